//! Lambda function `bapi`: serves `shared::routes::BAPI`, and links only what its
//! routes use.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(&shared::routes::BAPI).await
}
