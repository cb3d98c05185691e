//! Lambda function `bapi`: serves the routes named `bapi` in `shared::routes::ROUTES`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::run("bapi").await
}
