//! Lambda function `fapi-jwks`: serves the routes named `fapi-jwks` in `shared::routes::ROUTES`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run("fapi-jwks").await
}
