//! Lambda function `fapi-dev-browser`: serves the routes named `fapi-dev-browser` in `shared::routes::ROUTES`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run("fapi-dev-browser").await
}
