{{/*
Helpers shared by every component. Each one says how to call it.
Components pass a dict: "root" is the top context ($), "component" the
component's name as used in resource names and labels (control, nats, …),
"values" the component's values block when the helper needs it.
*/}}

{{/*
moat.name — the chart name (or nameOverride), DNS-safe.
Usage: {{ include "moat.name" . }}
*/}}
{{- define "moat.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
moat.fullname — prefix of every resource name: fullnameOverride, else the
release name when it already contains the chart name, else <release>-<chart>.
Truncated to 40 characters so that "<fullname>-<component>-<suffix>" fits 63.
Usage: {{ include "moat.fullname" . }}
*/}}
{{- define "moat.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
moat.componentName — the name of a component's resources: <fullname>-<component>.
Usage: {{ include "moat.componentName" (dict "root" $ "component" "control") }}
*/}}
{{- define "moat.componentName" -}}
{{- printf "%s-%s" (include "moat.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
moat.chart — chart name and version for the helm.sh/chart label.
Usage: {{ include "moat.chart" . }}
*/}}
{{- define "moat.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
moat.selectorLabels — the immutable labels that select a component's pods.
Usage: {{- include "moat.selectorLabels" (dict "root" $ "component" "control") | nindent 6 }}
*/}}
{{- define "moat.selectorLabels" -}}
app.kubernetes.io/name: {{ include "moat.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
moat.labels — the full label set of a component's resources (selector labels,
version, chart, part-of, managed-by).
Usage: {{- include "moat.labels" (dict "root" $ "component" "control") | nindent 4 }}
*/}}
{{- define "moat.labels" -}}
{{ include "moat.selectorLabels" . }}
app.kubernetes.io/part-of: moat
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ include "moat.chart" .root }}
{{- end }}

{{/*
moat.clientLabels — labels that NetworkPolicies of NATS and Redis admit. Put
them on the pods of every component that talks to NATS or Redis.
Usage: {{- include "moat.clientLabels" (dict "nats" true "redis" true) | nindent 8 }}
*/}}
{{- define "moat.clientLabels" -}}
{{- $labels := dict }}
{{- if .nats }}{{ $_ := set $labels "moat.io/nats-client" "true" }}{{ end }}
{{- if .redis }}{{ $_ := set $labels "moat.io/redis-client" "true" }}{{ end }}
{{- with $labels }}{{ toYaml . }}{{ end }}
{{- end }}

{{/*
moat.image — an image reference. For a Moat service pass "service": empty
fields of "image" fall back to the chart-wide .Values.image, the tag to the
chart's appVersion. For a third-party image omit "service"; its values must
name repository and tag. A digest, when set, is appended.
Usage: {{ include "moat.image" (dict "root" $ "image" .Values.control.image "service" "control") }}
       {{ include "moat.image" (dict "root" $ "image" .Values.nats.image) }}
*/}}
{{- define "moat.image" -}}
{{- $global := .root.Values.image }}
{{- $repository := .image.repository }}
{{- $tag := .image.tag }}
{{- if .service }}
{{- $repository = default (printf "%s/%s%s" $global.registry $global.repositoryPrefix .service) $repository }}
{{- $tag = default (default .root.Chart.AppVersion $global.tag) $tag }}
{{- end }}
{{- $ref := printf "%s:%s" $repository (toString $tag) }}
{{- if .image.digest }}
{{- $ref = printf "%s@%s" $ref .image.digest }}
{{- end }}
{{- $ref }}
{{- end }}

{{/*
moat.imagePullPolicy — a Moat service image's pull policy, falling back to
the chart-wide one.
Usage: imagePullPolicy: {{ include "moat.imagePullPolicy" (dict "root" $ "image" .Values.control.image) }}
*/}}
{{- define "moat.imagePullPolicy" -}}
{{- default .root.Values.image.pullPolicy .image.pullPolicy }}
{{- end }}

{{/*
moat.imagePullSecrets — the pod's imagePullSecrets block (or nothing).
Usage: {{- with include "moat.imagePullSecrets" $ }}{{ . | nindent 6 }}{{ end }}
*/}}
{{- define "moat.imagePullSecrets" -}}
{{- with .Values.image.pullSecrets -}}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/*
moat.serviceAccountName — the ServiceAccount a component's pods run as.
Usage: {{ include "moat.serviceAccountName" (dict "root" $ "component" "control" "values" .Values.control) }}
*/}}
{{- define "moat.serviceAccountName" -}}
{{- if .values.serviceAccount.create }}
{{- default (include "moat.componentName" .) .values.serviceAccount.name }}
{{- else }}
{{- default "default" .values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
moat.podSecurityContext / moat.securityContext — the chart-wide security
contexts of stateless Moat services with the component's overrides merged in.
Usage: {{- include "moat.podSecurityContext" (dict "root" $ "values" .Values.control) | nindent 6 }}
       {{- include "moat.securityContext" (dict "root" $ "values" .Values.control) | nindent 10 }}
*/}}
{{- define "moat.podSecurityContext" -}}
{{- toYaml (mustMergeOverwrite (deepCopy .root.Values.podSecurityContext) (deepCopy .values.podSecurityContext)) }}
{{- end }}

{{- define "moat.securityContext" -}}
{{- toYaml (mustMergeOverwrite (deepCopy .root.Values.securityContext) (deepCopy .values.securityContext)) }}
{{- end }}

{{/*
moat.natsUrl — the NATS client URL: the bundled server's Service, else
nats.external.url (empty when it comes from a Secret).
Usage: {{ include "moat.natsUrl" $ }}
*/}}
{{- define "moat.natsUrl" -}}
{{- if .Values.nats.enabled }}
{{- printf "nats://%s.%s.svc:%d" (include "moat.componentName" (dict "root" . "component" "nats")) .Release.Namespace (int .Values.nats.port) }}
{{- else }}
{{- .Values.nats.external.url }}
{{- end }}
{{- end }}

{{/*
moat.redisUrl — the Redis URL: the bundled server's Service, else
redis.external.url (empty when it comes from a Secret).
Usage: {{ include "moat.redisUrl" $ }}
*/}}
{{- define "moat.redisUrl" -}}
{{- if .Values.redis.enabled }}
{{- printf "redis://%s.%s.svc:%d" (include "moat.componentName" (dict "root" . "component" "redis")) .Release.Namespace (int .Values.redis.port) }}
{{- else }}
{{- .Values.redis.external.url }}
{{- end }}
{{- end }}

{{/*
moat.expectedServices — the comma list of Moat services control aggregates:
control.expectedServices, else every Moat service this release enables.
A new service adds its name and condition to $enabled here.
Usage: {{ include "moat.expectedServices" $ }}
*/}}
{{- define "moat.expectedServices" -}}
{{- if .Values.control.expectedServices }}
{{- join "," .Values.control.expectedServices }}
{{- else }}
{{- $enabled := list "control" }}
{{- if .Values.proxy.enabled }}{{ $enabled = append $enabled "proxy" }}{{ end }}
{{- if .Values.tlsMediation.enabled }}{{ $enabled = append $enabled "tls-mediation" }}{{ end }}
{{- if .Values.avScanner.enabled }}{{ $enabled = append $enabled "av-scanner" }}{{ end }}
{{- if .Values.firewall.enabled }}{{ $enabled = append $enabled "firewall" }}{{ end }}
{{- if .Values.qos.enabled }}{{ $enabled = append $enabled "qos" }}{{ end }}
{{- join "," $enabled }}
{{- end }}
{{- end }}

{{/*
moat.configEnv — the non-secret environment every Moat service shares, as
ConfigMap data: log level, NATS and Redis URLs, OpenTelemetry settings.
A component's ConfigMap adds its own MOAT_<SVC>_* keys after it.
Usage: {{- include "moat.configEnv" (dict "root" $ "component" "control" "values" .Values.control) | nindent 2 }}
*/}}
{{- define "moat.configEnv" -}}
{{- $root := .root -}}
MOAT_LOG_LEVEL: {{ default $root.Values.logLevel .values.logLevel | quote }}
{{- with include "moat.natsUrl" $root }}
MOAT_NATS_URL: {{ . | quote }}
{{- end }}
{{- with include "moat.redisUrl" $root }}
MOAT_REDIS_URL: {{ . | quote }}
{{- end }}
OTEL_SERVICE_NAME: {{ .component | quote }}
{{- with $root.Values.telemetry.otlpEndpoint }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ . | quote }}
OTEL_EXPORTER_OTLP_PROTOCOL: {{ $root.Values.telemetry.otlpProtocol | quote }}
{{- else }}
OTEL_TRACES_EXPORTER: "none"
OTEL_METRICS_EXPORTER: "none"
OTEL_LOGS_EXPORTER: "none"
{{- end }}
{{- $attrs := list (printf "service.namespace=moat") (printf "service.version=%s" $root.Chart.AppVersion) }}
{{- range $k, $v := $root.Values.telemetry.resourceAttributes }}
{{- $attrs = append $attrs (printf "%s=%s" $k (toString $v)) }}
{{- end }}
OTEL_RESOURCE_ATTRIBUTES: {{ join "," $attrs | quote }}
{{- end }}

{{/*
moat.podEnv — the container env every Moat service gets beside its
ConfigMap: the pod's identity (downward API; the pod name is the service's
MOAT_INSTANCE_ID, also under hostNetwork where the hostname is the node's) and
the NATS/Redis URLs read from Secrets when nats/redis.external.urlSecret is set.
Usage: {{- include "moat.podEnv" $ | nindent 12 }}
*/}}
{{- define "moat.podEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: MOAT_INSTANCE_ID
  value: "$(POD_NAME)"
{{- if and (not .Values.nats.enabled) .Values.nats.external.urlSecret.name }}
- name: MOAT_NATS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.nats.external.urlSecret.name }}
      key: {{ .Values.nats.external.urlSecret.key }}
{{- end }}
{{- if and (not .Values.redis.enabled) .Values.redis.external.urlSecret.name }}
- name: MOAT_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.external.urlSecret.name }}
      key: {{ .Values.redis.external.urlSecret.key }}
{{- end }}
{{- end }}

{{/*
moat.checksum — sha256 of another rendered template, for a pod annotation
that restarts the pods when that config changes.
Usage: checksum/config: {{ include "moat.checksum" (dict "root" $ "path" "/control/configmap.yaml") }}
*/}}
{{- define "moat.checksum" -}}
{{- include (print .root.Template.BasePath .path) .root | sha256sum }}
{{- end }}

{{/*
moat.volumeClaim — a volumeClaimTemplates entry, or nothing when persistence
is off (the StatefulSet then mounts an emptyDir of the same name).
Usage: {{- with include "moat.volumeClaim" (dict "name" "data" "persistence" .Values.nats.persistence) }}{{ . | nindent 2 }}{{ end }}
*/}}
{{- define "moat.volumeClaim" -}}
{{- if .persistence.enabled -}}
volumeClaimTemplates:
  - metadata:
      name: {{ .name }}
    spec:
      accessModes: ["ReadWriteOnce"]
      {{- with .persistence.storageClass }}
      storageClassName: {{ . | quote }}
      {{- end }}
      resources:
        requests:
          storage: {{ .persistence.size }}
{{- end }}
{{- end }}

{{/*
moat.urlPort — the port of a URL (scheme://[user@]host:port/…), else "default".
For NetworkPolicy egress to servers outside the chart (external NATS/Redis, OTLP).
Usage: {{ include "moat.urlPort" (dict "url" .Values.nats.external.url "default" 4222) }}
*/}}
{{- define "moat.urlPort" -}}
{{- $authority := regexReplaceAll "^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*).*$" (toString .url) "${1}" }}
{{- $port := regexFind ":[0-9]+$" $authority | trimPrefix ":" }}
{{- default (toString .default) $port }}
{{- end }}

{{/*
moat.proxy.httpHost — the address of the proxy's health/metrics port:
proxy.transparent.httpHost on the gateway's host network, else 0.0.0.0 (the pod's own IP).
Usage: {{ include "moat.proxy.httpHost" $ }}
*/}}
{{- define "moat.proxy.httpHost" -}}
{{- if .Values.proxy.transparent.enabled }}
{{- .Values.proxy.transparent.httpHost }}
{{- else -}}
0.0.0.0
{{- end }}
{{- end }}

{{/*
moat.proxy.httpExposed — "true" when the proxy's health/metrics port is reachable
from other pods (not bound to loopback), else empty: the Service, the test and
NOTES.txt leave it out then.
Usage: {{- if include "moat.proxy.httpExposed" $ }}…{{ end }}
*/}}
{{- define "moat.proxy.httpExposed" -}}
{{- if not (has (include "moat.proxy.httpHost" .) (list "127.0.0.1" "::1" "localhost")) }}true{{ end }}
{{- end }}

{{/*
moat.hostNetworkClients — "true" when this release runs a Moat pod on the host
network that talks to NATS and Redis (the transparent proxy, the firewall, qos), else empty.
Such pods connect from node addresses, not pod IPs, so the NetworkPolicies of
NATS and Redis also admit gateway.nodeCIDRs then. A new host agent adds its
condition here.
Usage: {{- if include "moat.hostNetworkClients" $ }}…{{ end }}
*/}}
{{- define "moat.hostNetworkClients" -}}
{{- if or (and .Values.proxy.enabled .Values.proxy.transparent.enabled) .Values.firewall.enabled .Values.qos.enabled }}true{{ end }}
{{- end }}

{{/*
moat.proxy.httpService — the Service carrying the proxy's http port: the proxy's
own Service when it is a ClusterIP, else <proxy>-http (ClusterIP), so health and
metrics never ride on a NodePort or LoadBalancer.
Usage: {{ include "moat.proxy.httpService" $ }}
*/}}
{{- define "moat.proxy.httpService" -}}
{{- $name := include "moat.componentName" (dict "root" . "component" "proxy") }}
{{- if eq .Values.proxy.service.type "ClusterIP" }}
{{- $name }}
{{- else }}
{{- printf "%s-http" $name }}
{{- end }}
{{- end }}

{{/*
moat.egressDependencies — NetworkPolicy egress rules (a list, under `egress:`) to what every
Moat service needs: DNS (to the peers in "dnsTo", else anywhere), NATS and Redis (the bundled
servers' pods, else the external URL's port) and the OTLP endpoint's port when set.
Usage: {{- include "moat.egressDependencies" (dict "root" $ "dnsTo" $np.egress.dnsTo) | nindent 4 }}
*/}}
{{- define "moat.egressDependencies" -}}
{{- $root := .root -}}
# DNS: the cluster names of NATS, Redis and the collector (and, for the proxy, upstream names).
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
  {{- with .dnsTo }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
# NATS: events, status, policy changes.
{{- if $root.Values.nats.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "moat.selectorLabels" (dict "root" $root "component" "nats") | nindent 10 }}
  ports:
    - port: {{ $root.Values.nats.port }}
      protocol: TCP
{{- else }}
- ports:
    - port: {{ include "moat.urlPort" (dict "url" $root.Values.nats.external.url "default" 4222) }}
      protocol: TCP
{{- end }}
# Redis: policy and caches.
{{- if $root.Values.redis.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "moat.selectorLabels" (dict "root" $root "component" "redis") | nindent 10 }}
  ports:
    - port: {{ $root.Values.redis.port }}
      protocol: TCP
{{- else }}
- ports:
    - port: {{ include "moat.urlPort" (dict "url" $root.Values.redis.external.url "default" 6379) }}
      protocol: TCP
{{- end }}
{{- with $root.Values.telemetry.otlpEndpoint }}
# OTLP export.
- ports:
    - port: {{ include "moat.urlPort" (dict "url" . "default" (ternary 4317 4318 (eq $root.Values.telemetry.otlpProtocol "grpc"))) }}
      protocol: TCP
{{- end }}
{{- end }}

{{/*
moat.tlsMediation.address — host:port of tls-mediation's gRPC Service, for the proxy
(`MOAT_PROXY_TLS_MEDIATION_ADDRESS`).
Usage: {{ include "moat.tlsMediation.address" $ }}
*/}}
{{- define "moat.tlsMediation.address" -}}
{{- printf "%s.%s.svc:%d" (include "moat.componentName" (dict "root" . "component" "tls-mediation")) .Release.Namespace (int .Values.tlsMediation.ports.grpc) }}
{{- end }}

{{/*
moat.tlsMediation.dataVolume — how tls-mediation keeps a generated CA: "none" when it imports
one (tlsMediation.ca.existingSecret), "pvc" with persistence, else "emptyDir" (a new CA on
every restart).
Usage: {{- if eq (include "moat.tlsMediation.dataVolume" $) "pvc" }}…{{ end }}
*/}}
{{- define "moat.tlsMediation.dataVolume" -}}
{{- if .Values.tlsMediation.ca.existingSecret -}}
none
{{- else if .Values.tlsMediation.persistence.enabled -}}
pvc
{{- else -}}
emptyDir
{{- end }}
{{- end }}

{{/*
moat.tlsMediation.caService — the Service carrying tls-mediation's CA port to LAN clients: the
component's own (ClusterIP) Service, else <tls-mediation>-ca of tlsMediation.service.type.
Usage: {{ include "moat.tlsMediation.caService" $ }}
*/}}
{{- define "moat.tlsMediation.caService" -}}
{{- $name := include "moat.componentName" (dict "root" . "component" "tls-mediation") }}
{{- if eq .Values.tlsMediation.service.type "ClusterIP" }}
{{- $name }}
{{- else }}
{{- printf "%s-ca" $name }}
{{- end }}
{{- end }}

{{/*
moat.tlsMediation.grpcTlsSecret — the Secret holding the mutual TLS material of tls-mediation's
gRPC port (ca.crt, server.crt, server.key, client.crt, client.key):
tlsMediation.grpcTls.existingSecret, else the chart's own <tls-mediation>-grpc.
Usage: {{ include "moat.tlsMediation.grpcTlsSecret" $ }}
*/}}
{{- define "moat.tlsMediation.grpcTlsSecret" -}}
{{- default (printf "%s-grpc" (include "moat.componentName" (dict "root" . "component" "tls-mediation"))) .Values.tlsMediation.grpcTls.existingSecret }}
{{- end }}

{{/*
moat.tlsMediation.grpcTlsData — the data (base64, as YAML) of the gRPC mutual TLS Secret, or
nothing when tlsMediation or grpcTls is off. The chart's own Secret: the data already in the
cluster when it holds all five entries (so upgrades keep the certificates), else a new CA
(genCA) signing a server certificate for the Service's names and a client certificate
(CN moat-proxy). An existingSecret: its data when lookup finds it (for the pods' checksum),
else nothing. Generated once per render and kept on the root context, so the Secret and the
pods' checksum annotations agree. `helm template` has no cluster: new certificates every time.
Usage: {{- include "moat.tlsMediation.grpcTlsData" $ | nindent 2 }}
       checksum/grpc-tls: {{ include "moat.tlsMediation.grpcTlsData" $ | sha256sum }}
*/}}
{{- define "moat.tlsMediation.grpcTlsData" -}}
{{- $g := .Values.tlsMediation.grpcTls }}
{{- if and .Values.tlsMediation.enabled $g.enabled }}
{{- if not (hasKey . "moatGrpcTlsData") }}
{{- $name := include "moat.tlsMediation.grpcTlsSecret" . }}
{{- $existing := (lookup "v1" "Secret" .Release.Namespace $name).data | default dict }}
{{- $data := dict }}
{{- if $g.existingSecret }}
{{- $data = $existing }}
{{- else if and (get $existing "ca.crt") (get $existing "server.crt") (get $existing "server.key") (get $existing "client.crt") (get $existing "client.key") }}
{{- $data = pick $existing "ca.crt" "server.crt" "server.key" "client.crt" "client.key" }}
{{- else }}
{{- $svc := include "moat.componentName" (dict "root" . "component" "tls-mediation") }}
{{- $ns := .Release.Namespace }}
{{- $days := int $g.validityDays }}
{{- $ca := genCA (printf "%s-grpc-ca" $svc) $days }}
{{- $dns := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) }}
{{- $server := genSignedCert (printf "%s.%s.svc" $svc $ns) (list) $dns $days $ca }}
{{- $client := genSignedCert "moat-proxy" (list) (list) $days $ca }}
{{- $data = dict "ca.crt" ($ca.Cert | b64enc) "server.crt" ($server.Cert | b64enc) "server.key" ($server.Key | b64enc) "client.crt" ($client.Cert | b64enc) "client.key" ($client.Key | b64enc) }}
{{- end }}
{{- $_ := set . "moatGrpcTlsData" $data }}
{{- end }}
{{- with get . "moatGrpcTlsData" }}
{{- toYaml . }}
{{- end }}
{{- end }}
{{- end }}

{{/*
moat.avScanner.keda — "true" when av-scanner scales with KEDA: avScanner.autoscaling.enabled and
.keda.enabled, and the cluster serves keda.sh/v1alpha1 (`helm template` needs
`--api-versions keda.sh/v1alpha1`); else empty, and the CPU HPA is rendered instead.
Usage: {{- if include "moat.avScanner.keda" $ }}…{{ end }}
*/}}
{{- define "moat.avScanner.keda" -}}
{{- $a := .Values.avScanner.autoscaling }}
{{- if and .Values.avScanner.enabled $a.enabled $a.keda.enabled (.Capabilities.APIVersions.Has "keda.sh/v1alpha1") }}true{{ end }}
{{- end }}

{{/*
moat.avScanner.natsMonitoringEndpoint — host:port of the NATS monitoring endpoint KEDA reads the
scan queue's lag from: avScanner.autoscaling.keda.natsMonitoringEndpoint, else the bundled server's
headless Service (the only Service carrying its monitoring port).
Usage: {{ include "moat.avScanner.natsMonitoringEndpoint" $ }}
*/}}
{{- define "moat.avScanner.natsMonitoringEndpoint" -}}
{{- if .Values.avScanner.autoscaling.keda.natsMonitoringEndpoint }}
{{- .Values.avScanner.autoscaling.keda.natsMonitoringEndpoint }}
{{- else if .Values.nats.enabled }}
{{- printf "%s-headless.%s.svc:%d" (include "moat.componentName" (dict "root" . "component" "nats")) .Release.Namespace (int .Values.nats.monitorPort) }}
{{- end }}
{{- end }}

{{/*
moat.avScanner.streamMaxBytes — avScanner.clamd.streamMaxLength (e.g. 64Mi) in bytes.
Usage: {{ include "moat.avScanner.streamMaxBytes" $ | int64 }}
*/}}
{{- define "moat.avScanner.streamMaxBytes" -}}
{{- $units := dict "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 }}
{{- $size := toString .Values.avScanner.clamd.streamMaxLength }}
{{- mul (regexFind "^[0-9]+" $size | int64) (get $units (regexFind "[KMGT]i$" $size)) }}
{{- end }}
