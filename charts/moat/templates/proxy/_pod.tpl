{{/*
moat.proxy.podTemplate — the proxy's pod template, shared by the Deployment
(explicit mode) and the host-network DaemonSet (transparent mode, gateway nodes).
Usage: {{- include "moat.proxy.podTemplate" $ | nindent 2 }}   (under the workload's spec:)
*/}}
{{- define "moat.proxy.podTemplate" -}}
{{- $p := .Values.proxy }}
{{- $ctx := dict "root" . "component" "proxy" "values" $p }}
{{- $transparent := $p.transparent.enabled }}
{{- $httpHost := include "moat.proxy.httpHost" . }}
{{- $probeHost := ternary "127.0.0.1" $httpHost (has $httpHost (list "0.0.0.0" "::")) }}
{{- $grpcTls := and .Values.tlsMediation.enabled .Values.tlsMediation.grpcTls.enabled }}
{{- $priority := $p.priorityClassName }}
{{- if and $transparent (not $priority) }}{{ $priority = "system-node-critical" }}{{ end -}}
template:
  metadata:
    labels:
      {{- include "moat.labels" $ctx | nindent 6 }}
      {{- include "moat.clientLabels" (dict "nats" true "redis" true) | nindent 6 }}
      {{- if .Values.tlsMediation.enabled }}
      # Admitted by tls-mediation's NetworkPolicy (gRPC: leaf certificates).
      moat.io/tls-mediation-client: "true"
      {{- end }}
      {{- with $p.podLabels }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    annotations:
      checksum/config: {{ include "moat.checksum" (dict "root" . "path" "/proxy/configmap.yaml") }}
      {{- with include "moat.tlsMediation.grpcTlsData" . }}
      # The client certificate is read at start: a new Secret restarts the pods.
      checksum/grpc-tls: {{ sha256sum . }}
      {{- end }}
      {{- with $p.podAnnotations }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
  spec:
    serviceAccountName: {{ include "moat.serviceAccountName" $ctx }}
    automountServiceAccountToken: false
    {{- with include "moat.imagePullSecrets" . }}{{ . | nindent 4 }}{{ end }}
    {{- with $priority }}
    priorityClassName: {{ . }}
    {{- end }}
    {{- if $transparent }}
    # SO_ORIGINAL_DST answers only in the network namespace where nftables
    # redirected the connection: the gateway node's own.
    hostNetwork: true
    dnsPolicy: ClusterFirstWithHostNet
    {{- end }}
    terminationGracePeriodSeconds: {{ $p.terminationGracePeriodSeconds }}
    securityContext:
      {{- include "moat.podSecurityContext" $ctx | nindent 6 }}
    containers:
      - name: proxy
        image: {{ include "moat.image" (dict "root" . "image" $p.image "service" "proxy") }}
        imagePullPolicy: {{ include "moat.imagePullPolicy" (dict "root" . "image" $p.image) }}
        envFrom:
          - configMapRef:
              name: {{ include "moat.componentName" $ctx }}
        env:
          {{- include "moat.podEnv" . | nindent 10 }}
          {{- with $p.extraEnv }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        {{- /* Under hostNetwork each containerPort is also a hostPort: the scheduler refuses a node where one is taken. */}}
        ports:
          - name: proxy
            containerPort: {{ $p.ports.proxy }}
            protocol: TCP
          {{- if and $transparent $p.transparent.httpPort }}
          - name: intercept-http
            containerPort: {{ $p.transparent.httpPort }}
            protocol: TCP
          {{- end }}
          {{- if and $transparent $p.transparent.tlsPort }}
          - name: intercept-tls
            containerPort: {{ $p.transparent.tlsPort }}
            protocol: TCP
          {{- end }}
          - name: http
            containerPort: {{ $p.ports.http }}
            protocol: TCP
        {{- range $probe := list (dict "kind" "startupProbe" "path" "/healthz") (dict "kind" "livenessProbe" "path" "/healthz") (dict "kind" "readinessProbe" "path" "/readyz") }}
        {{ $probe.kind }}:
          httpGet:
            {{- if $transparent }}
            host: {{ $probeHost | quote }}
            {{- end }}
            path: {{ $probe.path }}
            port: {{ $p.ports.http }}
          {{- if eq $probe.kind "startupProbe" }}
          periodSeconds: 2
          timeoutSeconds: {{ $p.probes.timeoutSeconds }}
          failureThreshold: {{ $p.probes.startupFailureThreshold }}
          {{- else }}
          periodSeconds: {{ $p.probes.periodSeconds }}
          timeoutSeconds: {{ $p.probes.timeoutSeconds }}
          failureThreshold: {{ $p.probes.failureThreshold }}
          {{- end }}
        {{- end }}
        {{- if $p.preStopSleepSeconds }}
        lifecycle:
          # Keep serving while Services and load balancers drop this pod; SIGTERM then drains.
          preStop:
            exec:
              command: ["sleep", {{ $p.preStopSleepSeconds | quote }}]
        {{- end }}
        resources:
          {{- toYaml $p.resources | nindent 10 }}
        securityContext:
          {{- include "moat.securityContext" $ctx | nindent 10 }}
        volumeMounts:
          # The root filesystem is read-only; Node and its libraries may still want a /tmp.
          - name: tmp
            mountPath: /tmp
          {{- if ne $p.urlLists.type "none" }}
          - name: urllists
            mountPath: {{ $p.urlLists.mountPath }}
            readOnly: true
            {{- with $p.urlLists.subPath }}
            subPath: {{ . }}
            {{- end }}
          {{- end }}
          {{- if $p.upstreamTrust.extraCaConfigMap.name }}
          - name: upstream-ca
            mountPath: /etc/moat/upstream-ca
            readOnly: true
          {{- end }}
          {{- if $grpcTls }}
          - name: tls-mediation-client
            mountPath: /etc/moat/tls-mediation-client
            readOnly: true
          {{- end }}
    volumes:
      - name: tmp
        emptyDir:
          sizeLimit: 16Mi
      {{- if eq $p.urlLists.type "persistentVolumeClaim" }}
      - name: urllists
        persistentVolumeClaim:
          claimName: {{ $p.urlLists.existingClaim }}
          readOnly: true
      {{- else if eq $p.urlLists.type "hostPath" }}
      # URL category lists (UT1/squidGuard directories) kept on the node, e.g. by a
      # cron job; read-only, and the pod fails to start if the directory is missing.
      - name: urllists
        hostPath:
          path: {{ $p.urlLists.hostPath }}
          type: Directory
      {{- end }}
      {{- with $p.upstreamTrust.extraCaConfigMap }}
      {{- if .name }}
      # Extra CAs trusted for upstream servers (certificates only), listed in MOAT_PROXY_UPSTREAM_CA_FILES.
      - name: upstream-ca
        configMap:
          name: {{ .name }}
          items:
            {{- range .keys }}
            - key: {{ . }}
              path: {{ . }}
            {{- end }}
      {{- end }}
      {{- end }}
      {{- if $grpcTls }}
      # Mutual TLS to tls-mediation's gRPC port (MOAT_PROXY_TLS_MEDIATION_*_FILE): the client's
      # entries only, never server.key (and nothing of the interception CA).
      - name: tls-mediation-client
        secret:
          secretName: {{ include "moat.tlsMediation.grpcTlsSecret" . }}
          defaultMode: 0400
          items:
            - key: ca.crt
              path: ca.crt
            - key: client.crt
              path: client.crt
            - key: client.key
              path: client.key
      {{- end }}
    {{- $nodeSelector := $p.nodeSelector }}
    {{- $tolerations := $p.tolerations }}
    {{- if $transparent }}
    {{- $nodeSelector = mustMergeOverwrite (deepCopy .Values.gateway.nodeSelector) (deepCopy $p.nodeSelector) }}
    {{- $tolerations = concat .Values.gateway.tolerations $p.tolerations }}
    {{- end }}
    {{- with $nodeSelector }}
    nodeSelector:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $p.affinity }}
    affinity:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $tolerations }}
    tolerations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- if not $transparent }}
    topologySpreadConstraints:
      {{- if $p.topologySpreadConstraints }}
      {{- toYaml $p.topologySpreadConstraints | nindent 6 }}
      {{- else }}
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: ScheduleAnyway
        labelSelector:
          matchLabels:
            {{- include "moat.selectorLabels" $ctx | nindent 12 }}
        matchLabelKeys: ["pod-template-hash"]
      {{- end }}
    {{- end }}
{{- end }}
