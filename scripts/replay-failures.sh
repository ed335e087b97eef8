#!/usr/bin/env bash
# Replays the stream consumers' failure queue in a deployed stack. Each message names the function
# whose batch exhausted its retries (push or projector) and where the batch lies in the table's
# stream; that function is invoked with {"replay": [message]}, and the message deleted once it
# answered. Both functions' effects are idempotent, so a batch replayed twice changes nothing more.
# A batch older than the stream's 24 hours can no longer be read (the answer says so): rebuild its
# rooms instead (README, "Repairing derived state").
#
#   scripts/replay-failures.sh STACK_NAME        (needs the AWS CLI and jq, and the stack's rights)
set -euo pipefail

stack=${1:?usage: scripts/replay-failures.sh STACK_NAME}
queue=$(aws cloudformation describe-stack-resource --stack-name "$stack" \
  --logical-resource-id StreamFailureQueue --query StackResourceDetail.PhysicalResourceId --output text)
answer=$(mktemp)
trap 'rm -f "$answer"' EXIT
replayed=0
while :; do
  received=$(aws sqs receive-message --queue-url "$queue" --max-number-of-messages 10 \
    --visibility-timeout 300 --wait-time-seconds 2 --output json)
  count=$(jq '(.Messages // []) | length' <<<"${received:-{\}}")
  [ "$count" -gt 0 ] || break
  for i in $(seq 0 $((count - 1))); do
    body=$(jq -r ".Messages[$i].Body" <<<"$received")
    handle=$(jq -r ".Messages[$i].ReceiptHandle" <<<"$received")
    function=$(jq -r '.requestContext.functionArn' <<<"$body")
    meta=$(aws lambda invoke --function-name "$function" --cli-binary-format raw-in-base64-out \
      --payload "{\"replay\": [$body]}" "$answer" --output json)
    if jq -e '.FunctionError' <<<"$meta" >/dev/null; then
      echo "replay-failures: $function could not replay a batch, left in the queue: $(cat "$answer")" >&2
      continue
    fi
    aws sqs delete-message --queue-url "$queue" --receipt-handle "$handle"
    replayed=$((replayed + 1))
    echo "replay-failures: $function: $(cat "$answer")"
  done
done
echo "replay-failures: $replayed batches replayed"
