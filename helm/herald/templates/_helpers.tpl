{{/*
Names, labels and the derived pieces of herald's configuration. The config is
computed once here ("herald.config") so that the ConfigMap, the probes, the
grace period and the KEDA triggers all read the same values.
*/}}

{{- define "herald.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "herald.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "herald.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "herald.selectorLabels" -}}
app.kubernetes.io/name: {{ include "herald.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "herald.labels" -}}
helm.sh/chart: {{ include "herald.chart" . }}
{{ include "herald.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: worker
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "herald.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "herald.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "herald.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}
{{- end }}

{{/* Where the Kafka TLS Secrets are mounted. */}}
{{- define "herald.kafkaTlsDir" -}}
/var/run/secrets/herald/kafka
{{- end }}

{{/*
One config value as herald.conf text: lists are comma-joined, whole numbers
print without an exponent (values arrive as float64 from YAML).
*/}}
{{- define "herald.confValue" -}}
{{- if kindIs "slice" . }}
{{- $items := list }}
{{- range . }}{{ $items = append $items (include "herald.confValue" .) }}{{ end }}
{{- join "," $items }}
{{- else if kindIs "float64" . }}
{{- if eq . (floor .) }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/*
The effective herald.conf as a YAML map of strings: .Values.config plus the
keys implied by kafka.sasl, kafka.tls and redis. A key set explicitly in
.Values.config wins over an implied one.
*/}}
{{- define "herald.config" -}}
{{- $out := dict }}
{{- range $key, $value := .Values.config }}
{{- if not (kindIs "invalid" $value) }}
{{- $_ := set $out $key (include "herald.confValue" $value) }}
{{- end }}
{{- end }}
{{- $implied := dict }}
{{- $sasl := .Values.kafka.sasl }}
{{- $tls := .Values.kafka.tls }}
{{- if $sasl.enabled }}
{{- $_ := set $implied "kafka.security.protocol" (ternary "SASL_SSL" "SASL_PLAINTEXT" $tls.enabled) }}
{{- $_ := set $implied "kafka.sasl.mechanisms" $sasl.mechanism }}
{{- else if $tls.enabled }}
{{- $_ := set $implied "kafka.security.protocol" "SSL" }}
{{- end }}
{{- if and $tls.enabled $tls.ca.name }}
{{- $_ := set $implied "kafka.ssl.ca.location" (printf "%s/ca.crt" (include "herald.kafkaTlsDir" .)) }}
{{- end }}
{{- if and $tls.enabled $tls.clientCert.name }}
{{- $_ := set $implied "kafka.ssl.certificate.location" (printf "%s/client.crt" (include "herald.kafkaTlsDir" .)) }}
{{- $_ := set $implied "kafka.ssl.key.location" (printf "%s/client.key" (include "herald.kafkaTlsDir" .)) }}
{{- end }}
{{- if not (include "herald.redisUrlFromEnv" .) }}
{{- $_ := set $implied "redis.url" .Values.redis.url }}
{{- end }}
{{- toYaml (merge $out $implied) }}
{{- end }}

{{/* Non-empty when HERALD_REDIS_URL comes from the environment (a Secret). */}}
{{- define "herald.redisUrlFromEnv" -}}
{{- if or .Values.redis.urlSecret.name .Values.redis.passwordSecret.name }}true{{ end }}
{{- end }}

{{/* The herald.conf file. */}}
{{- define "herald.confFile" -}}
# herald.conf, rendered by the {{ .Chart.Name }} chart from the release's values.
# HERALD_* environment variables (set from Secrets) override keys of this file.
{{- if include "herald.redisUrlFromEnv" . }}
# redis.url comes from the environment (HERALD_REDIS_URL, from a Secret).
{{- end }}
{{- if .Values.kafka.sasl.enabled }}
# kafka.sasl.username and kafka.sasl.password come from the environment.
{{- end }}
{{- range $key, $value := include "herald.config" . | fromYaml }}
{{- $value = toString $value }}
{{- if contains "\n" $value }}
{{- fail (printf "config %q: a value may not span lines" $key) }}
{{- end }}
{{- if or (eq $value "") (ne $value (trim $value)) }}
{{ $key }} = "{{ $value }}"
{{- else }}
{{ $key }} = {{ $value }}
{{- end }}
{{- end }}
{{- end }}

{{/* One value of the effective config, or the given default. */}}
{{- define "herald.configGet" -}}
{{- $conf := include "herald.config" .root | fromYaml }}
{{- if hasKey $conf .key }}{{ get $conf .key }}{{ else }}{{ .default }}{{ end }}
{{- end }}

{{/* The port of config http.listen (host:port, [v6]:port). */}}
{{- define "herald.listenPort" -}}
{{- $listen := include "herald.configGet" (dict "root" . "key" "http.listen" "default" "0.0.0.0:9464") }}
{{- if not $listen }}
{{- fail "config http.listen may not be empty: the probes and /metrics need it" }}
{{- end }}
{{- $port := splitList ":" $listen | last }}
{{- if not (regexMatch "^[0-9]+$" $port) }}
{{- fail (printf "config http.listen %q: expected host:port" $listen) }}
{{- end }}
{{- $port }}
{{- end }}

{{/* A herald duration ("30s", "1500ms", "0") in milliseconds. */}}
{{- define "herald.durationMs" -}}
{{- $s := toString . | trim }}
{{- if eq $s "0" }}0
{{- else }}
{{- if not (regexMatch "^[0-9]+(ms|s|m|h|d)$" $s) }}
{{- fail (printf "invalid duration %q: expected an integer with ms, s, m, h or d" $s) }}
{{- end }}
{{- $num := regexFind "^[0-9]+" $s }}
{{- $unit := trimPrefix $num $s }}
{{- $mul := get (dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000 "d" 86400000) $unit }}
{{- mul (atoi $num) $mul }}
{{- end }}
{{- end }}

{{/* Milliseconds as herald labels a retry tier: the largest whole unit. */}}
{{- define "herald.durationLabel" -}}
{{- $ms := int64 . }}
{{- if and (ne $ms 0) (eq (mod $ms 86400000) 0) }}{{ div $ms 86400000 }}d
{{- else if and (ne $ms 0) (eq (mod $ms 3600000) 0) }}{{ div $ms 3600000 }}h
{{- else if and (ne $ms 0) (eq (mod $ms 60000) 0) }}{{ div $ms 60000 }}m
{{- else if and (ne $ms 0) (eq (mod $ms 1000) 0) }}{{ div $ms 1000 }}s
{{- else }}{{ $ms }}ms
{{- end }}
{{- end }}

{{/* Pod grace period: longer than herald's drain deadline. */}}
{{- define "herald.terminationGracePeriodSeconds" -}}
{{- $ms := include "herald.durationMs" (include "herald.configGet" (dict "root" . "key" "shutdown.timeout" "default" "30s")) | int64 }}
{{- $drain := div (add $ms 999) 1000 }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $drain .Values.terminationGraceMarginSeconds }}
{{- else }}
{{- $explicit := int64 .Values.terminationGracePeriodSeconds }}
{{- if le $explicit $drain }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed shutdown.timeout (%ds): Kubernetes would kill herald mid-drain" $explicit $drain) }}
{{- end }}
{{- $explicit }}
{{- end }}
{{- end }}

{{/* Events topics as a comma-joined list (regex entries included). */}}
{{- define "herald.eventsTopics" -}}
{{- $topics := list }}
{{- range splitList "," (include "herald.configGet" (dict "root" . "key" "topics.events" "default" "herald.events")) }}
{{- if trim . }}{{ $topics = append $topics (trim .) }}{{ end }}
{{- end }}
{{- join "," $topics }}
{{- end }}

{{/* Retry tier topics: prefix + label of each distinct delay of retry.schedule. */}}
{{- define "herald.retryTopics" -}}
{{- if .Values.keda.retryTopics }}
{{- join "," .Values.keda.retryTopics }}
{{- else }}
{{- $prefix := include "herald.configGet" (dict "root" . "key" "topics.retry_prefix" "default" "herald.retry.") }}
{{- $schedule := include "herald.configGet" (dict "root" . "key" "retry.schedule" "default" "5s,5m,30m,2h,5h,10h,10h") }}
{{- $topics := list }}
{{- range splitList "," $schedule }}
{{- $label := include "herald.durationLabel" (include "herald.durationMs" (trim .)) }}
{{- $topics = append $topics (printf "%s%s" $prefix $label) }}
{{- end }}
{{- $topics | uniq | join "," }}
{{- end }}
{{- end }}
