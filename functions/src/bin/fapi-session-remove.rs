//! Lambda function `fapi-session-remove`: serves the routes named `fapi-session-remove` in `shared::routes::ROUTES`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run("fapi-session-remove").await
}
