{{/* Common labels; component is the part of Flowline (ovs-dpdk, device-plugin, ...). */}}
{{- define "flowline.labels" -}}
app.kubernetes.io/name: flowline
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/component: {{ .component }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "flowline.selectorLabels" -}}
app.kubernetes.io/name: flowline
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Object name: <release>-<component>, cut to 63 characters. */}}
{{- define "flowline.name" -}}
{{- printf "%s-%s" .root.Release.Name .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "flowline.image" -}}
{{- $tag := .root.Values.global.imageTag | default .root.Chart.AppVersion -}}
{{- printf "%s/%s:%s" .root.Values.global.imageRegistry .image $tag -}}
{{- end -}}

{{- define "flowline.podCommon" -}}
{{- with .root.Values.global.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.global.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.global.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A container securityContext that drops every capability and adds only the given ones. */}}
{{- define "flowline.securityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
  {{- with .add }}
  add:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* OVSDB's unix socket in global.ovsRunDir, where the OVS DaemonSet's ovsdb-server listens. */}}
{{- define "flowline.ovsdbSocket" -}}
{{- printf "%s/db.sock" (.Values.global.ovsRunDir | trimSuffix "/") -}}
{{- end -}}

{{/*
  The CNI network config of contract 2 (docs/architecture.md#cni-to-switch-and-pod; type "flowline"), as JSON.
  ovsdbSocket follows global.ovsRunDir (the plugin's own default is /var/run/openvswitch/db.sock).
*/}}
{{- define "flowline.cniConfig" -}}
{{- $cni := .Values.cni -}}
{{- $sock := include "flowline.ovsdbSocket" . -}}
{{- with $cni.extraConfig.ovsdbSocket -}}
{{- if ne (toString .) $sock -}}
{{- fail (printf "cni.extraConfig.ovsdbSocket %s is not OVS's socket %s: set global.ovsRunDir instead (OVS, the CNI daemon and the network config all follow it)" (toString .) $sock) -}}
{{- end -}}
{{- end -}}
{{- $conf := dict "cniVersion" "1.1.0" "name" $cni.networkName "type" "flowline" "bridge" .Values.global.bridge "socketDir" .Values.global.socketDir "ovsdbSocket" $sock "mtu" (int $cni.mtu) -}}
{{- if $cni.ipam }}{{- $_ := set $conf "ipam" $cni.ipam -}}{{- end -}}
{{- $conf = merge $conf $cni.extraConfig -}}
{{- toJson $conf -}}
{{- end -}}

{{/* gRPC mutual TLS (values tls): where the certificates are mounted, and the SPIFFE IDs. */}}
{{- define "flowline.grpcTlsDir" -}}
/var/run/secrets/flowline.io/grpc
{{- end -}}

{{/* spiffe://<trustDomain>/flowline/<role> for role controller or operator. */}}
{{- define "flowline.spiffeId" -}}
{{- printf "spiffe://%s/flowline/%s" .root.Values.tls.trustDomain .role -}}
{{- end -}}

{{/* The Secret holding a component's gRPC certificate (ca.crt, tls.crt, tls.key). */}}
{{- define "flowline.grpcTlsSecret" -}}
{{- include "flowline.name" (dict "root" .root "component" (printf "%s-grpc-tls" .component)) -}}
{{- end -}}

{{/* The container env of gRPC transport security: FLOWLINE_TLS_* or FLOWLINE_INSECURE=1. */}}
{{- define "flowline.grpcTlsEnv" -}}
{{- if .Values.tls.enabled }}
# Mutual TLS: ca.crt, tls.crt, tls.key of the mounted Secret, re-read every 60 s.
- name: FLOWLINE_TLS_CA
  value: {{ include "flowline.grpcTlsDir" . }}/ca.crt
- name: FLOWLINE_TLS_CERT
  value: {{ include "flowline.grpcTlsDir" . }}/tls.crt
- name: FLOWLINE_TLS_KEY
  value: {{ include "flowline.grpcTlsDir" . }}/tls.key
{{- else }}
# tls.enabled=false: plaintext gRPC, warned at start.
- name: FLOWLINE_INSECURE
  value: "1"
{{- end }}
- name: FLOWLINE_TRUST_DOMAIN
  value: {{ .Values.tls.trustDomain | quote }}
{{- end -}}

{{/*
  OVS over SSL with switch identities (ovs.remote.tls, chain controller enabled): each node's
  switch has its own certificate (ovs-switch.<node>), so OVS runs as one DaemonSet per node, each
  mounting only its node's Secret.
*/}}
{{- define "flowline.ovsPerNode" -}}
{{- if and .Values.chainController.enabled .Values.ovs.remote.tls.enabled }}true{{ end -}}
{{- end -}}

{{/*
  The scheme of OVS's OVSDB and OpenFlow listeners on the node IP: "pssl" (ovs.remote.tls, the
  default), "ptcp" only when ovs.remote.tls.enabled is false (NOTES warn), and "" (no listener)
  when nothing dials them: without the chain controller.
*/}}
{{- define "flowline.ovsListen" -}}
{{- if .Values.chainController.enabled }}{{ ternary "pssl" "ptcp" .Values.ovs.remote.tls.enabled }}{{ end -}}
{{- end -}}

{{/*
  The nodes that get a switch certificate and an OVS DaemonSet, as a JSON list: the cluster's
  Nodes (lookup; those matching global.nodeSelector) and ovs.nodes, sorted, without repeats.
  lookup sees nothing under `helm template`, `helm lint` and --dry-run=client: there ovs.nodes
  alone counts.
*/}}
{{- define "flowline.ovsNodes" -}}
{{- $names := list }}
{{- $found := lookup "v1" "Node" "" "" }}
{{- range ($found.items | default list) }}
{{- $labels := .metadata.labels | default dict }}
{{- $match := true }}
{{- range $k, $v := $.Values.global.nodeSelector }}
{{- if ne (get $labels $k) (toString $v) }}{{ $match = false }}{{ end }}
{{- end }}
{{- if $match }}{{ $names = append $names .metadata.name }}{{ end }}
{{- end }}
{{- range .Values.ovs.nodes }}{{ $names = append $names . }}{{ end }}
{{- $names | uniq | sortAlpha | toJson -}}
{{- end -}}

{{/* The switch's name in its certificate (CN and DNS SAN), as the chain controller expects it. */}}
{{- define "flowline.ovsSwitchName" -}}
{{- printf "ovs-switch.%s" . -}}
{{- end -}}

{{/*
  <release>-<component>-<node>, or, beyond 63 characters, its first 52 and a hash of the node
  name (two long node names never share an object).
*/}}
{{- define "flowline.nodeObjectName" -}}
{{- $full := printf "%s-%s-%s" .root.Release.Name .component .node -}}
{{- if le (len $full) 63 -}}
{{- $full -}}
{{- else -}}
{{- printf "%s-%s" ($full | trunc 52 | trimSuffix "-" | trimSuffix ".") (sha256sum .node | trunc 10) -}}
{{- end -}}
{{- end -}}

{{/* A node name as a label value (at most 63 characters: longer ones are cut and hashed). */}}
{{- define "flowline.nodeLabel" -}}
{{- if le (len .) 63 -}}
{{- . -}}
{{- else -}}
{{- printf "%s-%s" (. | trunc 52 | trimSuffix "-" | trimSuffix ".") (sha256sum . | trunc 10) -}}
{{- end -}}
{{- end -}}

{{/* The Secret with a node's switch certificate (tls.key, tls.crt; ca.crt: the controller CA). */}}
{{- define "flowline.ovsSwitchSecret" -}}
{{- include "flowline.nodeObjectName" (dict "root" .root "component" "ovs-tls-switch" "node" .node) -}}
{{- end -}}

{{/* OVS certificates from cert-manager: with gRPC TLS on and tls.certManager.enabled. */}}
{{- define "flowline.ovsCertManager" -}}
{{- if and .Values.tls.enabled .Values.tls.certManager.enabled }}true{{ end -}}
{{- end -}}

{{/*
  Whether a chart-generated gRPC certificate found by lookup (`old`: its Secret, or nothing) is
  kept: only while it is of the current CA (ca.crt = caCrt), for this identity (annotation
  flowline.io/spiffe-id = id: a new trust domain or name gets a new certificate) and more than
  renewBeforeDays from its end (annotation flowline.io/not-after, written when it was made; one
  without is renewed). Helm cannot read a certificate's dates, hence the annotation. Prints
  "keep" or nothing.
*/}}
{{- define "flowline.generatedCertKeep" -}}
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
{{- define "flowline.generatedCertNotAfter" -}}
{{- dateInZone "2006-01-02T15:04:05Z07:00" (now | dateModify (printf "+%dh" (mul 24 (int .)))) "UTC" -}}
{{- end -}}

{{/* tls.generated's validityDays and renewBeforeDays, checked. */}}
{{- define "flowline.generatedCertDays" -}}
{{- $v := int .validityDays -}}
{{- $r := int .renewBeforeDays -}}
{{- if or (lt $v 2) (lt $r 1) (ge $r $v) -}}
{{- fail (printf "tls.generated: renewBeforeDays (%d) must be at least 1 and less than validityDays (%d)" $r $v) -}}
{{- end -}}
{{- end -}}
