//! What every handler shares: the settings, the ticket core (the one door to tickets and
//! sessions), the proxy (back-end pools and open WebSockets) and the QlikView group
//! directory. Handlers take `&State`; nothing here knows a handler.
//!
//! A session that ends, by whatever route and on whichever node, is announced by the core
//! ([`Core::session_events`]); the proxy listens and closes that session's WebSockets.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ticket_core::{Core, Lifetimes, Store};

use url::Url;

use crate::config::Settings;
use crate::config::{Authentication, ConfigError, Hosts};
use crate::groups::GroupDirectory;
use crate::proxy::Proxy;
use crate::signin::jwt::Verifier;
use crate::signin::oidc::Provider;
use crate::signin::passwords::Users;

/// The shared state of a running gateway.
#[derive(Debug)]
pub(crate) struct State {
    /// The settings it runs with.
    pub settings: Settings,
    /// Tickets, target ids and sessions.
    pub core: Core,
    /// The back ends and the WebSockets bridged to them.
    pub proxy: Proxy,
    /// Where redirects may go, read once from the settings.
    pub redirects: Redirects,
    /// The JWT verifiers of the virtual proxies that sign users in with JWTs, by realm.
    pub jwt: HashMap<String, Verifier>,
    /// The OpenID providers of the virtual proxies that sign users in with one, by realm.
    pub oidc: HashMap<String, Arc<Provider>>,
    /// The users the demo module checks passwords against, if a file names them.
    pub demo_users: Option<Users>,
    /// The users QlikView's form login checks, if a file names them.
    pub qlikview_users: Option<Users>,
    /// The QlikView group directory; replaced whole on reload.
    groups: RwLock<Arc<GroupDirectory>>,
}

/// What the settings name on disk, read.
#[derive(Debug)]
pub(crate) struct Files {
    groups: GroupDirectory,
    jwt: HashMap<String, Verifier>,
    oidc: HashMap<String, Arc<Provider>>,
    demo_users: Option<Users>,
    qlikview_users: Option<Users>,
}

impl Files {
    /// Reads every file the settings name; an error names the setting.
    pub(crate) fn load(settings: &Settings) -> Result<Files, ConfigError> {
        let users = |key: &str, path: &Option<std::path::PathBuf>| {
            path.as_deref()
                .map(|p| Users::load(p).map_err(|m| ConfigError::new(key, m)))
                .transpose()
        };
        let groups = match &settings.qlikview.group_directory {
            Some(path) => GroupDirectory::load(path)
                .map_err(|m| ConfigError::new("qlikview.group_directory", m))?,
            None => GroupDirectory::default(),
        };
        let mut jwt = HashMap::new();
        let mut oidc = HashMap::new();
        for (i, vp) in settings.virtual_proxies.iter().enumerate() {
            match &vp.authentication {
                Authentication::Jwt(rules) => {
                    let key = format!("virtual_proxy[{i}].jwt_certificate");
                    jwt.insert(vp.realm.clone(), Verifier::load(&key, rules)?);
                }
                Authentication::Oidc(rules) => {
                    let redirect_uri = settings.frontend_url(vp, crate::config::OIDC_CALLBACK_PATH);
                    let provider = Provider::new(
                        rules,
                        &redirect_uri,
                        settings.proxy.connect_timeout,
                        settings.proxy.timeout,
                    )
                    .map_err(|m| {
                        ConfigError::new(
                            format!("virtual_proxy[{i}].oidc_configuration_endpoint"),
                            m,
                        )
                    })?;
                    oidc.insert(vp.realm.clone(), Arc::new(provider));
                }
                Authentication::Ticket | Authentication::Header(_) => {}
            }
        }
        Ok(Files {
            groups,
            jwt,
            oidc,
            demo_users: users("demo.users_file", &settings.demo_users_file)?,
            qlikview_users: users("qlikview.users_file", &settings.qlikview.users_file)?,
        })
    }
}

/// The redirect guard's base, prepared at start-up (see [`crate::http::redirect`]).
#[derive(Debug)]
pub(crate) struct Redirects {
    /// The front end's public URL, against which relative targets resolve.
    pub(crate) base: Url,
}

impl Redirects {
    fn new(settings: &Settings) -> Redirects {
        Redirects {
            // Validated as an absolute http(s) URL by the configuration.
            base: Url::parse(&settings.frontend.public_url)
                .unwrap_or_else(|_| Url::parse("http://localhost/").expect("a valid URL")),
        }
    }

    /// The `Location` for `target` under `hosts`, relative targets resolved against the
    /// request path `path`; `None` when a browser must not go there.
    pub(crate) fn location(&self, target: &str, path: &str, hosts: &Hosts) -> Option<String> {
        let base = self.base.join(path).ok()?;
        crate::http::redirect::location(target, &base, hosts)
    }
}

impl State {
    /// The state of a gateway over `store`, with the group directory already read. OpenID
    /// providers are discovered in the background from here on.
    pub(crate) fn new(settings: Settings, store: Arc<dyn Store>, files: Files) -> State {
        for provider in files.oidc.values() {
            provider.discover_in_background();
        }
        let lifetimes = Lifetimes {
            ticket: settings.ticket_ttl,
            target: settings.target_id_ttl,
        };
        let core = Core::new(store, lifetimes);
        State {
            proxy: Proxy::new(&settings, core.session_events()),
            core,
            redirects: Redirects::new(&settings),
            groups: RwLock::new(Arc::new(files.groups)),
            jwt: files.jwt,
            oidc: files.oidc,
            demo_users: files.demo_users,
            qlikview_users: files.qlikview_users,
            settings,
        }
    }

    /// The current QlikView group directory.
    pub(crate) fn groups(&self) -> Arc<GroupDirectory> {
        match self.groups.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads `[qlikview] group_directory` again (on SIGHUP). A file that fails to parse is
    /// reported and the last good directory stays in force.
    pub(crate) fn reload_groups(&self) -> Result<(), String> {
        let Some(path) = &self.settings.qlikview.group_directory else {
            return Ok(());
        };
        let fresh = GroupDirectory::load(path)?;
        let mut slot = match self.groups.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Arc::new(fresh);
        Ok(())
    }
}
