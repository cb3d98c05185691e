//! Lambda function `fapi-environment`: serves the routes named `fapi-environment` in `shared::routes::ROUTES`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run("fapi-environment").await
}
