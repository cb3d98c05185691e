//! Lambda function `fapi-session-tokens`: serves the routes named `fapi-session-tokens` in `shared::routes::ROUTES`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run("fapi-session-tokens").await
}
