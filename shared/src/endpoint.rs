//! The service's endpoints, by name: what metrics label answers by. Declared by the route
//! table's rows ([`crate::route_table`]), so no list here can disagree with it.

/// Which API a route belongs to: its function's (`bapi` is the Backend API).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// Called by browsers and apps, with a client token.
    Frontend,
    /// Called by the app's servers, with the secret key.
    Backend,
}

/// What a route needs of its caller before its handler runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Frontend API, acting for the caller's client: a client token it cannot read (a
    /// dev-browser token on a production instance, a repeated `Authorization`) fails it.
    Client,
    /// Frontend API, never needing a client (the public documents, `POST
    /// /v1/dev_browser`): a client token it cannot read cannot fail it.
    Public,
    /// Backend API: `Authorization: Bearer <secret key>`, checked by the route layer.
    SecretKey,
}

impl Access {
    /// The API this access belongs to (the route table checks each row's against its
    /// function's at compile time).
    pub const fn api(self) -> Api {
        match self {
            Access::Client | Access::Public => Api::Frontend,
            Access::SecretKey => Api::Backend,
        }
    }
}

/// Declares [`Endpoint`] from the route table's rows.
macro_rules! endpoints {
    ($(
        $(#[$doc:meta])*
        $function:ident $binary:literal $api:ident ($start:expr) {
            $(
                $endpoint:ident $method:ident $path:literal $access:ident
                |$state:pat_param, $req:pat_param, $auth:pat_param| $call:expr;
            )*
        }
    )*) => {
        /// Every route's endpoint, named by its row in the route table.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Endpoint {
            $($($endpoint,)*)*
        }

        impl Endpoint {
            /// Every endpoint, in the table's order (`endpoint as usize` indexes it).
            pub const ALL: &'static [Endpoint] = &[$($(Endpoint::$endpoint,)*)*];

            /// The endpoint's name, as metrics label it (`GetSession`).
            pub fn name(self) -> &'static str {
                match self {
                    $($(Endpoint::$endpoint => stringify!($endpoint),)*)*
                }
            }

            /// What the endpoint needs of its caller.
            pub const fn access(self) -> Access {
                match self {
                    $($(Endpoint::$endpoint => Access::$access,)*)*
                }
            }

            /// The API of the function that serves it.
            pub const fn api(self) -> Api {
                match self {
                    $($(Endpoint::$endpoint => Api::$api,)*)*
                }
            }
        }

        // A row's access must be of its function's API: a Backend API route cannot be
        // served as a Frontend API one, nor the other way round.
        $($(
            const _: () = assert!(
                matches!(
                    (Access::$access.api(), Api::$api),
                    (Api::Frontend, Api::Frontend) | (Api::Backend, Api::Backend)
                ),
                concat!(
                    stringify!($endpoint),
                    ": its access is not of its function's API (Backend API routes are SecretKey, Frontend API routes Client or Public)"
                )
            );
        )*)*
    };
}

crate::route_table::route_table!(endpoints);

impl Endpoint {
    /// Frontend API endpoints are called by browsers and apps; the rest by servers.
    pub const fn is_frontend(self) -> bool {
        matches!(self.api(), Api::Frontend)
    }
}
