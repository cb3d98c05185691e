//! Lambda function `fapi-session-end`: serves the routes named `fapi-session-end` in `shared::routes::ROUTES`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run("fapi-session-end").await
}
