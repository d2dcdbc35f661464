//! The node's own commands: `serve` (the tokio runtime, the node, its
//! web page and control socket, until Ctrl-C), `page-token` and `open`.
//! The protocol itself lives in the library.

use anyhow::{Context, Result, bail};
use serde_json::json;
use tokio::net::TcpListener;

use potluck::app::control::ControlResponse;
use potluck::app::{
    Access, App, DiscoveryOptions, Home, NodePort, PageChoice, PageToken, StartOptions,
};

use super::args::{DiscoveryArgs, WebArgs};
use super::ctx::{Ctx, runtime, welcome};
use super::output::{Output, write_stdout};

/// Runs a command handed over by the control socket, inside the node
/// (`cli::run_in_node`). `serve` takes it as an argument so that this
/// file needs not import the dispatch, which imports it.
pub(crate) type RunInNode = fn(&Home, &App, Vec<String>) -> ControlResponse;

/// `potluck serve`: runs until Ctrl-C or SIGTERM. Commands that arrive on
/// the control socket are run with `run_in_node`.
pub fn serve(
    home: &Home,
    listen: Option<String>,
    extra_peers: Vec<String>,
    discovery: DiscoveryArgs,
    web: WebArgs,
    run_in_node: RunInNode,
) -> Result<()> {
    // Only a Unix control socket hands commands over.
    #[cfg(not(unix))]
    let _ = run_in_node;
    let options = StartOptions {
        listen,
        extra_peers,
        discovery: DiscoveryOptions {
            off: discovery.no_discovery,
            port: discovery.discovery_port,
            targets: discovery.discovery_targets,
        },
    };
    // Bind first: when a port is taken, nothing has been created yet.
    let port = NodePort::bind(home, &options)?;
    let page = bind_page(home, &web)?;
    let app = App::open(home, Access::Create)?;
    if app.created_identity() {
        welcome(home, &app, false, true)?;
    }
    let rt = runtime()?;
    rt.block_on(async move {
        let page_url = page.as_ref().map(Page::url);
        let (serving, mut tasks) = app.start(port, &options, page_url.clone()).await?;
        #[cfg(unix)]
        let control = potluck::app::control::ControlSocket::bind(home)?;
        let me = app.feed_id()?;
        let mut started = format!("potluck node {me} listening on {}\n", serving.listen);
        if let Some(url) = &page_url {
            started.push_str(&format!("page: {url}\n"));
        }
        write_stdout(&started)?;
        tracing::info!(feed = %me, local = %serving.listen, page = page_url.as_deref().unwrap_or("off"), "listening");
        if let Some(page) = page {
            let settings = potluck::web::WebSettings {
                token: page.token.clone(),
                zone: potluck::web::system_zone(),
                invite_code: app.invite(None).ok().map(|invite| invite.code),
                extra_hosts: Vec::new(),
            };
            let listener = TcpListener::from_std(page.listener)
                .with_context(|| format!("cannot serve the page on {}", page.addr))?;
            let page_app = app.clone();
            tasks.push(tokio::spawn(async move {
                let stopping = page_app.clone();
                let shutdown = async move { stopping.stopped().await };
                if let Err(e) = potluck::web::serve(page_app, listener, settings, shutdown).await {
                    tracing::error!(error = %e, "the web page stopped");
                }
            }));
        }
        #[cfg(unix)]
        {
            let handler_app = app.clone();
            let handler_home = home.clone();
            let handler: potluck::app::control::Handler =
                std::sync::Arc::new(move |args| run_in_node(&handler_home, &handler_app, args));
            let control_app = app.clone();
            tasks.push(tokio::spawn(async move {
                control.serve(&control_app, handler).await
            }));
        }
        wait_for_signal().await;
        tracing::info!("shutting down");
        app.shutdown();
        for task in tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(6), task).await;
        }
        app.flush()?;
        Ok::<(), anyhow::Error>(())
    })
}

/// The web page's bound socket, before the runtime takes it over.
struct Page {
    listener: std::net::TcpListener,
    addr: std::net::SocketAddr,
    /// Required from browsers when the page listens beyond loopback.
    token: Option<String>,
}

impl Page {
    /// The address people open (on this computer).
    fn url(&self) -> String {
        let host = if self.addr.ip().is_unspecified() {
            // Every interface: this computer reaches it on loopback.
            std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), self.addr.port())
        } else {
            self.addr
        };
        match &self.token {
            Some(token) => format!("http://{host}/?token={token}"),
            None => format!("http://{host}/"),
        }
    }
}

/// How many ports after the default one a second node on this computer
/// tries for its page before it takes any free port.
const PAGE_PORT_TRIES: u16 = 20;

/// Binds the web page's port: the one given (`--web`, or `"web"` in
/// config.json), which must be free, or the default one or the next free
/// port after it. `None` when the page is off. Beyond loopback the page
/// needs the access token (`potluck page-token`); without it, refuses.
fn bind_page(home: &Home, web: &WebArgs) -> Result<Option<Page>> {
    let given = match PageChoice::of(home, web.addr.clone(), web.no_web)? {
        PageChoice::Off => return Ok(None),
        PageChoice::Given(addr) => Some(addr),
        PageChoice::Default => None,
    };
    let bind = |addr: std::net::SocketAddr| -> std::io::Result<std::net::TcpListener> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    };
    let listener = match given {
        Some(text) => {
            let addr: std::net::SocketAddr = text.parse().with_context(|| {
                format!("the page address {text:?} is not IP:PORT (e.g. 127.0.0.1:7645)")
            })?;
            bind(addr).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AddrInUse {
                    anyhow::anyhow!(
                        "cannot serve the page on {addr}: the port is in use; give another \
                         with `--web 127.0.0.1:PORT`, or turn the page off with `--no-web`"
                    )
                } else {
                    anyhow::anyhow!("cannot serve the page on {addr}: {e}")
                }
            })?
        }
        None => {
            let default: std::net::SocketAddr = PageChoice::default_addr()
                .parse()
                .context("the default page address")?;
            let mut found = None;
            for port in (default.port()..).take(usize::from(PAGE_PORT_TRIES)) {
                if let Ok(listener) = bind(std::net::SocketAddr::new(default.ip(), port)) {
                    found = Some(listener);
                    break;
                }
            }
            match found {
                Some(listener) => listener,
                None => bind(std::net::SocketAddr::new(default.ip(), 0))
                    .context("cannot find a free port for the page on 127.0.0.1")?,
            }
        }
    };
    let addr = listener.local_addr()?;
    let token = if addr.ip().is_loopback() {
        None
    } else {
        match PageToken::read(home)? {
            Some(token) => Some(token),
            None => bail!(
                "the page would listen on {addr}, where other computers can reach it, and it \
                 can publish as you: that needs an access token. Make one with \
                 `potluck page-token` (it is shown once), then start `potluck serve` again; \
                 or keep the page on this computer with `--web 127.0.0.1:7645`"
            ),
        }
    };
    Ok(Some(Page {
        listener,
        addr,
        token,
    }))
}

/// `potluck page-token`: makes the page's access token and shows it once.
pub fn page_token(home: &Home, out: &mut Output, new: bool) -> Result<()> {
    let (token, path) = PageToken::make(home, new)?;
    out.print(json!({ "token": token, "file": path }), || {
        format!(
            "page token (shown here once; kept, readable only by you, in {}): {token}\n\
             To reach the page from another device, serve it beyond this computer \
             (`potluck serve --web 0.0.0.0:7645`, restarting a running one) and open \
             http://HOST:7645/?token={token} there.",
            path.display()
        )
    });
    Ok(())
}

/// `potluck open`: the running node's page, opened in the default browser
/// by the process the person ran (a node may run as a service).
pub fn open(ctx: &Ctx, out: &mut Output, print: bool) -> Result<()> {
    let Some(serving) = ctx.running.as_ref().and_then(App::serving) else {
        bail!(
            "no node is running for this home: start one with `potluck serve`, then `potluck open`"
        );
    };
    let Some(url) = &serving.page else {
        bail!("the running node serves no page (it was started with --no-web or \"web\": \"off\")");
    };
    out.print(json!({ "page": url, "open": !print }), || url.clone());
    Ok(())
}

/// Opens `url` in the default browser (`$BROWSER` is honoured).
pub fn launch_browser(url: &str) -> Result<()> {
    webbrowser::open(url).with_context(|| format!("cannot start a browser; open {url} yourself"))
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
