{{/*
moat.gatewayAgent — a host agent that owns kernel state on the gateway node(s)
(firewall: nftables; qos: qdiscs): its ServiceAccount, ConfigMap and host-network
DaemonSet. The container runs as root with only NET_ADMIN and NET_RAW (nft, tc,
conntrack and ulogd need them; a non-root user cannot use added capabilities),
read-only root, no privilege escalation. `env` holds the agent's own
MOAT_<SVC>_* variables; `envPrefix` is <SVC>.
Usage: {{ include "moat.gatewayAgent" (dict "root" $ "component" "firewall" "envPrefix" "FIREWALL" "values" .Values.firewall "env" $env) }}
*/}}
{{- define "moat.gatewayAgent" -}}
{{- $root := .root }}
{{- $v := .values }}
{{- $ctx := dict "root" $root "component" .component "values" $v }}
{{- $name := include "moat.componentName" $ctx }}
{{- $config := dict }}
{{- $_ := set $config (printf "MOAT_%s_HTTP_HOST" .envPrefix) $v.httpHost }}
{{- $_ := set $config (printf "MOAT_%s_HTTP_PORT" .envPrefix) (toString $v.ports.http) }}
{{- range $key, $value := .env }}{{ $_ := set $config $key (toString $value) }}{{ end }}
{{- $configMap := include "moat.configEnv" $ctx | fromYaml }}
{{- $configMap = mustMergeOverwrite $configMap $config }}
{{- $probeHost := ternary "127.0.0.1" $v.httpHost (has $v.httpHost (list "0.0.0.0" "::")) }}
{{- if $v.serviceAccount.create }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "moat.serviceAccountName" $ctx }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "moat.labels" $ctx | nindent 4 }}
  {{- with $v.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
# The agent never calls the Kubernetes API.
automountServiceAccountToken: false
---
{{- end }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "moat.labels" $ctx | nindent 4 }}
data:
  {{- range $key := keys $configMap | sortAlpha }}
  {{ $key }}: {{ get $configMap $key | quote }}
  {{- end }}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "moat.labels" $ctx | nindent 4 }}
spec:
  revisionHistoryLimit: 5
  updateStrategy:
    type: RollingUpdate
    rollingUpdate:
      # the kernel keeps the ruleset/qdiscs while the pod is replaced: no gap in enforcement
      maxUnavailable: 1
      maxSurge: 0
  selector:
    matchLabels:
      {{- include "moat.selectorLabels" $ctx | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "moat.labels" $ctx | nindent 8 }}
        {{- include "moat.clientLabels" (dict "nats" true "redis" true) | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ toYaml $configMap | sha256sum }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "moat.serviceAccountName" $ctx }}
      automountServiceAccountToken: false
      {{- with include "moat.imagePullSecrets" $root }}{{ . | nindent 6 }}{{ end }}
      priorityClassName: {{ default "system-node-critical" $v.priorityClassName }}
      # The node's own nftables and qdiscs live in the host network namespace.
      hostNetwork: true
      dnsPolicy: ClusterFirstWithHostNet
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      securityContext:
        {{- $podSecurity := mustMergeOverwrite (deepCopy $root.Values.podSecurityContext) (dict "runAsNonRoot" false "runAsUser" 0 "runAsGroup" 0) }}
        {{- toYaml (mustMergeOverwrite $podSecurity (deepCopy $v.podSecurityContext)) | nindent 8 }}
      containers:
        - name: {{ .component }}
          image: {{ include "moat.image" (dict "root" $root "image" $v.image "service" .component) }}
          imagePullPolicy: {{ include "moat.imagePullPolicy" (dict "root" $root "image" $v.image) }}
          envFrom:
            - configMapRef:
                name: {{ $name }}
          env:
            {{- include "moat.podEnv" $root | nindent 12 }}
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            - name: http
              containerPort: {{ $v.ports.http }}
              protocol: TCP
          {{- range $probe := list (dict "kind" "startupProbe" "path" "/healthz") (dict "kind" "livenessProbe" "path" "/healthz") (dict "kind" "readinessProbe" "path" "/readyz") }}
          {{ $probe.kind }}:
            httpGet:
              host: {{ $probeHost | quote }}
              path: {{ $probe.path }}
              port: {{ $v.ports.http }}
            {{- if eq $probe.kind "startupProbe" }}
            periodSeconds: 2
            timeoutSeconds: {{ $v.probes.timeoutSeconds }}
            failureThreshold: {{ $v.probes.startupFailureThreshold }}
            {{- else }}
            periodSeconds: {{ $v.probes.periodSeconds }}
            timeoutSeconds: {{ $v.probes.timeoutSeconds }}
            failureThreshold: {{ $v.probes.failureThreshold }}
            {{- end }}
          {{- end }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- $security := mustMergeOverwrite (deepCopy $root.Values.securityContext) (dict "capabilities" (dict "drop" (list "ALL") "add" (list "NET_ADMIN" "NET_RAW"))) }}
            {{- toYaml (mustMergeOverwrite $security (deepCopy $v.securityContext)) | nindent 12 }}
          volumeMounts:
            # read-only root: Node's /tmp, and the firewall's ulogd configuration and socket
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 16Mi
      nodeSelector:
        {{- toYaml (mustMergeOverwrite (deepCopy $root.Values.gateway.nodeSelector) (deepCopy $v.nodeSelector)) | nindent 8 }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with concat $root.Values.gateway.tolerations $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
