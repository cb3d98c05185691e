//! Lambda function `fapi-client`: serves the routes named `fapi-client` in `shared::routes::ROUTES`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run("fapi-client").await
}
