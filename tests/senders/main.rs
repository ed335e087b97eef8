//! Concurrent senders in one room: a test binary of its own, so its thousand sends and their
//! projection run on a DynamoDB Local of their own, after the floods instead of behind them.

/// Twenty members of one room send fifty messages each at once: after 1,000 messages every member's
/// unread count is exact and the room counts each message once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_senders_leave_exact_counts_after_a_thousand_messages() {
    dm_tests::spawn_app().await.send_at_once(20, 50).await;
}
