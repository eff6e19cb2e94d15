{{/* Chart name, cut to the 63 characters a label value allows. */}}
{{- define "credvend.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, or release-chart when they differ. */}}
{{- define "credvend.fullname" -}}
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

{{- define "credvend.selectorLabels" -}}
app.kubernetes.io/name: {{ include "credvend.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "credvend.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "credvend.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "credvend.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "credvend.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "credvend.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "credvend.profilesConfigMap" -}}
{{- default (printf "%s-profiles" (include "credvend.fullname" .)) .Values.existingProfilesConfigMap }}
{{- end }}

{{/* IRSA and Pod Identity are two ways to give the pod the same role: one at a time. */}}
{{- define "credvend.validate" -}}
{{- if and .Values.aws.irsa.roleArn .Values.aws.podIdentity.enabled }}
{{- fail "aws.irsa.roleArn and aws.podIdentity.enabled exclude each other: pick one way to give the pod its role" }}
{{- end }}
{{- if and (not .Values.existingProfilesConfigMap) (not .Values.profiles) }}
{{- fail "profiles (the profiles file as YAML) or existingProfilesConfigMap is required" }}
{{- end }}
{{- end }}
