//! Lambda function `fapi-session-touch`: serves the routes named `fapi-session-touch` in `shared::routes::ROUTES`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run("fapi-session-touch").await
}
