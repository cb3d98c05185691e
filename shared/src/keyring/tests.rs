use super::*;

const MIN: Millis = 60_000;
const TIMES: RotationTimes = RotationTimes {
    window_ms: 5 * MIN,
    signing_retire_ms: 2 * MIN,
    client_retire_ms: 60 * MIN,
};

async fn first(now: Millis) -> KeyringRecord {
    KeyringRecord::initial(
        new_signing_key(&Sealer::Plain, now).await.unwrap(),
        new_client_secret(&Sealer::Plain, now).await.unwrap(),
    )
}

async fn rotate(record: &KeyringRecord, rotation: Rotation, now: Millis) -> KeyringRecord {
    record
        .rotated(
            rotation,
            now,
            TIMES,
            Some(new_signing_key(&Sealer::Plain, now).await.unwrap()),
            Some(new_client_secret(&Sealer::Plain, now).await.unwrap()),
        )
        .unwrap()
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_key_is_published_before_it_signs_and_after_it_stops() {
    let t0 = 1_000 * MIN;
    let v1 = first(t0).await;
    let old = v1.signing_keys[0].kid.clone();
    let v2 = rotate(&v1, Rotation::default(), t0).await;
    let new = v2.signing_keys[1].kid.clone();
    assert_eq!(v2.version, 2);

    let ring = Keyring::load(&v2, &Sealer::Plain, &Keyring::empty(), t0)
        .await
        .unwrap();
    // Within the window: both published, the old key still signs.
    assert_eq!(kids(&ring.jwks(t0)), [old.clone(), new.clone()]);
    assert_eq!(ring.signer(t0 + 5 * MIN - 1).unwrap().kid(), old);
    assert_eq!(v2.signing_keys[1].state(t0), Some(KeyState::Next));
    // After it: the new key signs, the old one retires but stays published...
    assert_eq!(ring.signer(t0 + 5 * MIN).unwrap().kid(), new);
    assert_eq!(
        v2.signing_keys[0].state(t0 + 5 * MIN),
        Some(KeyState::Retiring)
    );
    assert_eq!(
        kids(&ring.jwks(t0 + 7 * MIN - 1)),
        [old.clone(), new.clone()]
    );
    // ...until every token it signed has expired.
    assert_eq!(kids(&ring.jwks(t0 + 7 * MIN)), std::slice::from_ref(&new));
    assert_eq!(v2.signing_keys[0].state(t0 + 7 * MIN), None);

    // The next rotation drops the gone key from the record.
    let v3 = rotate(&v2, Rotation::default(), t0 + 8 * MIN).await;
    assert_eq!(v3.signing_keys.len(), 2);
    assert_eq!(v3.signing_keys[0].kid, new);
    // The public view carries exactly the public halves.
    let public = v3.public_view();
    assert_eq!(public.keys.len(), 2);
    assert!(!serde_json::to_string(&public).unwrap().contains("material"));
}

#[tokio::test]
async fn a_second_rotation_waits_for_the_first_unless_it_is_an_emergency() {
    let t0 = 1_000 * MIN;
    let v2 = rotate(&first(t0).await, Rotation::default(), t0).await;
    assert!(v2.pending(KeyKinds::All, t0 + MIN));
    let again = v2.rotated(Rotation::default(), t0 + MIN, TIMES, None, None);
    assert_eq!(again, Err(RotationError::Pending));

    let emergency = Rotation {
        keys: KeyKinds::All,
        emergency: true,
    };
    let v3 = rotate(&v2, emergency, t0 + MIN).await;
    // One key of each kind, signing at once; every other key is gone from JWKS at once.
    assert_eq!(v3.signing_keys.len(), 1);
    assert_eq!(v3.client_token_secrets.len(), 1);
    let ring = Keyring::load(&v3, &Sealer::Plain, &Keyring::empty(), t0 + MIN)
        .await
        .unwrap();
    assert_eq!(ring.signer(t0 + MIN).unwrap().kid(), v3.signing_keys[0].kid);
    assert_eq!(kids(&ring.jwks(t0 + MIN)), [v3.signing_keys[0].kid.clone()]);
}

#[tokio::test]
async fn client_tokens_of_a_retiring_secret_verify_and_ask_to_be_re_signed() {
    let t0 = 1_000 * MIN;
    let v1 = first(t0).await;
    let ring1 = Keyring::load(&v1, &Sealer::Plain, &Keyring::empty(), t0)
        .await
        .unwrap();
    let client = crate::domain::Client {
        id: "client_1".into(),
        rotating_token: "rot".into(),
        last_active_session_id: None,
        created_at: t0,
        updated_at: t0,
        expires_at: t0 + 1_000 * MIN,
        anonymous_until: None,
        sign_in: None,
        sign_up: None,
        version: 1,
    };
    let old_token = ring1.client_secret(t0).unwrap().issue(&client, t0).unwrap();
    assert!(!ring1.verify_client_token(&old_token, t0).unwrap().1);

    let only_client = Rotation {
        keys: KeyKinds::ClientToken,
        emergency: false,
    };
    let v2 = rotate(&v1, only_client, t0).await;
    // The signing keys were left alone.
    assert_eq!(v2.signing_keys, v1.signing_keys);
    let ring2 = Keyring::load(&v2, &Sealer::Plain, &ring1, t0)
        .await
        .unwrap();
    let after = t0 + 5 * MIN;
    let (claims, stale) = ring2.verify_client_token(&old_token, after).unwrap();
    assert!(stale);
    let fresh = ring2
        .client_secret(after)
        .unwrap()
        .reissue(&claims, after)
        .unwrap();
    let (again, stale) = ring2.verify_client_token(&fresh, after).unwrap();
    assert_eq!(again.id, "client_1");
    assert!(!stale);
    // Once the retiring secret is gone, its tokens fail like any foreign token.
    assert_eq!(
        ring2.verify_client_token(&old_token, after + 60 * MIN),
        Err(ClientTokenError::UnknownSecret)
    );
}
