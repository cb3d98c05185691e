//! The service's endpoints, by name: what routes map to, and what metrics label answers by.

/// Declares [`Endpoint`] with [`Endpoint::ALL`] and [`Endpoint::name`] from one list.
macro_rules! endpoints {
    ($($name:ident,)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Endpoint {
            $($name,)*
        }

        impl Endpoint {
            /// Every endpoint, in declaration order (`endpoint as usize` indexes it).
            pub const ALL: &'static [Endpoint] = &[$(Endpoint::$name,)*];

            /// The endpoint's name, as metrics label it (`GetSession`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Endpoint::$name => stringify!($name),)*
                }
            }
        }
    };
}

endpoints! {
    CreateClient,
    GetClient,
    RemoveClientSessions,
    Handshake,
    ListMySessions,
    ListMyActiveSessions,
    RevokeMySession,
    CreateDevBrowser,
    CreateSignIn,
    GetEnvironment,
    UpdateEnvironment,
    FrontendJwks,
    GetSession,
    TouchSession,
    EndSession,
    RemoveSession,
    CreateSessionToken,
    CreateSessionTokenFromTemplate,
    CreateUser,
    GetUser,
    UpdateUser,
    DeleteUser,
    BanUser,
    UnbanUser,
    CreateSignInToken,
    GetHandshakePayload,
    ListSessions,
    GetBackendSession,
    RevokeSession,
    RefreshSession,
    CreateBackendSessionToken,
    BackendJwks,
    CreateBackendTemplateToken,
    CreateJwtTemplate,
    ListJwtTemplates,
    GetJwtTemplate,
    UpdateJwtTemplate,
    DeleteJwtTemplate,
    GetInstanceKeys,
    RotateInstanceKeys,
    ListWebhookEndpoints,
    CreateWebhookEndpoint,
    DeleteWebhookEndpoint,
    RotateWebhookSecret,
}

impl Endpoint {
    /// Frontend API endpoints that act for the caller's client: a client token they
    /// cannot read (a dev-browser token on a production instance, a repeated
    /// `Authorization`) fails them. The public documents and `POST /v1/dev_browser` never
    /// look at one.
    pub fn acts_for_client(self) -> bool {
        self.is_frontend()
            && !matches!(
                self,
                Self::GetEnvironment
                    | Self::UpdateEnvironment
                    | Self::FrontendJwks
                    | Self::CreateDevBrowser
            )
    }

    /// Frontend API endpoints are called by browsers and apps; the rest by servers.
    pub fn is_frontend(self) -> bool {
        !matches!(
            self,
            Self::CreateUser
                | Self::GetUser
                | Self::UpdateUser
                | Self::DeleteUser
                | Self::BanUser
                | Self::UnbanUser
                | Self::CreateSignInToken
                | Self::GetHandshakePayload
                | Self::ListSessions
                | Self::GetBackendSession
                | Self::RevokeSession
                | Self::RefreshSession
                | Self::CreateBackendSessionToken
                | Self::BackendJwks
                | Self::CreateBackendTemplateToken
                | Self::CreateJwtTemplate
                | Self::ListJwtTemplates
                | Self::GetJwtTemplate
                | Self::UpdateJwtTemplate
                | Self::DeleteJwtTemplate
                | Self::GetInstanceKeys
                | Self::RotateInstanceKeys
                | Self::ListWebhookEndpoints
                | Self::CreateWebhookEndpoint
                | Self::DeleteWebhookEndpoint
                | Self::RotateWebhookSecret
        )
    }
}
