{{/*
matchConditions that skip requests from trustedControllers (the CNPG operator, the Argo Rollouts
controller): they rewrite their own objects all day, dbhook never needs to judge those writes,
and an outage of dbhook would otherwise stall them. Rendered from Kubernetes 1.28 (beta, on by
default; GA in 1.30); older API servers do not know the field, so nothing is skipped there.
*/}}
{{- define "dbhook.matchConditions" -}}
{{- $users := .Values.trustedControllers | default list }}
{{- if and $users (semverCompare ">=1.28.0-0" .Capabilities.KubeVersion.Version) }}
matchConditions:
  - name: not-from-a-trusted-controller
    {{- $quoted := list }}
    {{- range $users }}
    {{- $quoted = append $quoted (printf "'%s'" .) }}
    {{- end }}
    expression: {{ printf "!(request.userInfo.username in [%s])" (join ", " $quoted) | quote }}
{{- end }}
{{- end }}
