//! Lambda function `fapi-sign-ups`: serves `shared::routes::FAPI_SIGN_UPS`, and links only what its
//! routes use.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(&shared::routes::FAPI_SIGN_UPS).await
}
