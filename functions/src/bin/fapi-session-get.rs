//! Lambda function `fapi-session-get`: serves the routes named `fapi-session-get` in `shared::routes::ROUTES`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run("fapi-session-get").await
}
