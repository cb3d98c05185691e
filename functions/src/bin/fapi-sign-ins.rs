//! Lambda function `fapi-sign-ins`: serves the routes named `fapi-sign-ins` in `shared::routes::ROUTES`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run("fapi-sign-ins").await
}
