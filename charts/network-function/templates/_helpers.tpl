{{- define "nf.name" -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "nf.labels" -}}
app.kubernetes.io/name: {{ .Values.kind }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: flowline
app.kubernetes.io/component: network-function
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
flowline.io/nf-kind: {{ .Values.kind }}
{{- end -}}

{{- define "nf.selectorLabels" -}}
app.kubernetes.io/name: {{ .Values.kind }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Capabilities DPDK needs for the pod's port types (never privileged). */}}
{{- define "nf.capabilities" -}}
{{- $caps := list "IPC_LOCK" -}}
{{- if and (gt (int .Values.vfs.count) 0) (eq .Values.vfs.deviceType "netdevice") -}}
{{- if eq .Values.vfs.netdevMode "af_xdp" -}}
{{- $caps = concat $caps (list "NET_ADMIN" "NET_RAW" "BPF") -}}
{{- else -}}
{{- $caps = append $caps "NET_RAW" -}}
{{- end -}}
{{- end -}}
{{- toYaml $caps -}}
{{- end -}}

{{/* Memory quantity in MiB (512Mi, 1Gi, 1024Mi). */}}
{{- define "nf.mib" -}}
{{- $q := toString . -}}
{{- if hasSuffix "Gi" $q -}}{{- mul (trimSuffix "Gi" $q | int) 1024 -}}
{{- else if hasSuffix "Mi" $q -}}{{- trimSuffix "Mi" $q | int -}}
{{- else -}}{{- fail (printf "resources.hugepages2Mi %q: use Mi or Gi" $q) -}}
{{- end -}}
{{- end -}}

{{- define "nf.networks" -}}
{{- $out := list -}}
{{- range .Values.networks -}}
{{- $out = append $out (printf "%s/%s@%s" $.Values.flowlineNamespace .network .interface) -}}
{{- end -}}
{{- join ", " $out -}}
{{- end -}}

{{/* gRPC mutual TLS: the NF's SPIFFE ID (one per StatefulSet), its Secret, its mount. */}}
{{- define "nf.spiffeId" -}}
{{- printf "spiffe://%s/ns/%s/nf/%s" .Values.tls.trustDomain .Release.Namespace (include "nf.name" .) -}}
{{- end -}}

{{- define "nf.grpcTlsSecret" -}}
{{- printf "%s-grpc-tls" (include "nf.name" .) -}}
{{- end -}}

{{- define "nf.grpcTlsDir" -}}
/var/run/secrets/flowline.io/grpc
{{- end -}}

{{/* kind ipsec-gw: where its keys Secret is mounted (the config's keyDir unless set). */}}
{{- define "nf.ipsecKeysDir" -}}
/var/run/secrets/flowline.io/ipsec-keys
{{- end -}}

{{/*
  Whether a chart-generated gRPC certificate found by lookup (`old`: its Secret, or nothing) is
  kept: only while it is of the current CA (ca.crt = caCrt), for this identity (annotation
  flowline.io/spiffe-id = id: a new trust domain or name gets a new certificate) and more than
  renewBeforeDays from its end (annotation flowline.io/not-after, written when it was made; one
  without is renewed). Helm cannot read a certificate's dates, hence the annotation. Prints
  "keep" or nothing.
*/}}
{{- define "nf.generatedCertKeep" -}}
{{- $old := .old -}}
{{- if and $old $old.data (eq (index $old.data "ca.crt" | default "") .caCrt) -}}
{{- $ann := $old.metadata.annotations | default dict -}}
{{- if eq (get $ann "flowline.io/spiffe-id" | default "") .id -}}
{{- $end := toDate "2006-01-02T15:04:05Z07:00" (get $ann "flowline.io/not-after" | default "") | unixEpoch | int64 -}}
{{- $renewAt := sub $end (mul 86400 (int .renewBeforeDays)) -}}
{{- if lt (now | unixEpoch | int64) $renewAt -}}keep{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The end of a certificate made now for `.` days, as annotation flowline.io/not-after holds it. */}}
{{- define "nf.generatedCertNotAfter" -}}
{{- dateInZone "2006-01-02T15:04:05Z07:00" (now | dateModify (printf "+%dh" (mul 24 (int .)))) "UTC" -}}
{{- end -}}

{{/* tls.generated's validityDays and renewBeforeDays, checked. */}}
{{- define "nf.generatedCertDays" -}}
{{- $v := int .validityDays -}}
{{- $r := int .renewBeforeDays -}}
{{- if or (lt $v 2) (lt $r 1) (ge $r $v) -}}
{{- fail (printf "tls.generated: renewBeforeDays (%d) must be at least 1 and less than validityDays (%d)" $r $v) -}}
{{- end -}}
{{- end -}}
