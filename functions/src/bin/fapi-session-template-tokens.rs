//! Lambda function `fapi-session-template-tokens`: serves the routes named `fapi-session-template-tokens` in `shared::routes::ROUTES`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run("fapi-session-template-tokens").await
}
