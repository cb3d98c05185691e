//! Lambda function `fapi-sign-ins`: serves `shared::routes::FAPI_SIGN_INS`, and links only what its
//! routes use.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run(&shared::routes::FAPI_SIGN_INS).await
}
