#!/bin/bash
# LocalStack ready hook for docker-compose.yml (runs inside the LocalStack container, where
# `awslocal` is the AWS CLI pointed at LocalStack). Creates what scripts/docker/compose/profiles.yaml
# names: the profile role (trusting the caller credvend runs as), the bucket with a CORS rule for
# the browser origin in CREDVEND_CORS_ORIGINS, and a KMS key behind alias/credvend-uploads.
# Idempotent: a restarted LocalStack with persistence keeps working.
set -euo pipefail
REGION=eu-west-1
ROLE=credvend-uploads
BUCKET=credvend-uploads
ALIAS=alias/credvend-uploads
ORIGIN=http://localhost:3000

awslocal iam get-role --role-name "$ROLE" >/dev/null 2>&1 || awslocal iam create-role --role-name "$ROLE" \
  --assume-role-policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]}]}' >/dev/null
awslocal iam put-role-policy --role-name "$ROLE" --policy-name uploads --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject","s3:AbortMultipartUpload","s3:ListMultipartUploadParts"],"Resource":"arn:aws:s3:::credvend-uploads/uploads/*"},{"Effect":"Allow","Action":["kms:GenerateDataKey","kms:Decrypt"],"Resource":"*"}]}'

awslocal s3api head-bucket --bucket "$BUCKET" >/dev/null 2>&1 || awslocal s3api create-bucket --bucket "$BUCKET" \
  --region "$REGION" --create-bucket-configuration LocationConstraint="$REGION" >/dev/null
awslocal s3api put-bucket-cors --bucket "$BUCKET" --cors-configuration \
  "{\"CORSRules\":[{\"AllowedOrigins\":[\"$ORIGIN\"],\"AllowedMethods\":[\"PUT\",\"POST\",\"GET\",\"HEAD\"],\"AllowedHeaders\":[\"*\"],\"ExposeHeaders\":[\"ETag\"],\"MaxAgeSeconds\":3000}]}"

if ! awslocal kms describe-key --region "$REGION" --key-id "$ALIAS" >/dev/null 2>&1; then
  KEY_ID=$(awslocal kms create-key --region "$REGION" --description "credvend uploads (compose)" --query KeyMetadata.KeyId --output text)
  awslocal kms create-alias --region "$REGION" --alias-name "$ALIAS" --target-key-id "$KEY_ID"
fi
awslocal s3api put-bucket-encryption --bucket "$BUCKET" --server-side-encryption-configuration \
  "{\"Rules\":[{\"ApplyServerSideEncryptionByDefault\":{\"SSEAlgorithm\":\"aws:kms\",\"KMSMasterKeyID\":\"$ALIAS\"}}]}"
echo "credvend init: role $ROLE, bucket $BUCKET (CORS $ORIGIN), key $ALIAS ready"
