#[tokio::main]
async fn main() -> Result<(), dm_shared::lambda::Error> {
    dm_shared::lambda::run(dm_reactions::router).await
}
