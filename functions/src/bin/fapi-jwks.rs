//! Lambda function `fapi-jwks`: serves `shared::routes::FAPI_JWKS`, and links only what its
//! routes use.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(&shared::routes::FAPI_JWKS).await
}
