mod support;
use support::*;

#[tokio::test]
async fn harness_signs_in() {
    let app = TestApp::new().await;
    let (token, sid, _) = app.native_session().await;
    let resp = app
        .send(Req::get(format!("/v1/client/sessions/{sid}")).native(&token))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.body["response"]["status"], "active");
}
