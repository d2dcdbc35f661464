//! The node's own commands: `serve` (the tokio runtime, the node, its
//! web page and control socket, until Ctrl-C), `page-token` and `open`.
//! The protocol itself lives in the library.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::json;
use tokio::net::TcpListener;

use potluck::app::control::ControlResponse;
use potluck::app::{
    Access, App, DiscoveryOptions, Home, NodePort, PagePort, PageToken, PublicFlags, PublicPort,
    StartOptions, TlsFiles,
};
use potluck::web::{PublicTls, PublicTransport};

use super::args::ServeArgs;
use super::ctx::{Ctx, runtime, welcome};
use super::output::{Output, write_stdout};

/// Runs a command handed over by the control socket, inside the node
/// (`cli::run_in_node`). `serve` takes it as an argument so that this
/// file needs not import the dispatch, which imports it.
pub(crate) type RunInNode = fn(&Home, &App, Vec<String>) -> ControlResponse;

/// `potluck serve`: runs until Ctrl-C or SIGTERM. Commands that arrive on
/// the control socket are run with `run_in_node`.
pub(crate) fn serve(home: &Home, flags: ServeArgs, run_in_node: RunInNode) -> Result<()> {
    // Only a Unix control socket hands commands over.
    #[cfg(not(unix))]
    let _ = run_in_node;
    let ServeArgs {
        listen,
        peers,
        discovery,
        web,
        hub,
        public_web,
        tls_cert,
        tls_key,
    } = flags;
    let options = StartOptions {
        listen,
        extra_peers: peers,
        discovery: DiscoveryOptions {
            off: discovery.no_discovery,
            port: discovery.discovery_port,
            targets: discovery.discovery_targets,
        },
        hub,
    };
    // Bind first: when a port is taken, nothing has been created yet.
    let port = NodePort::bind(home, &options)?;
    let page = PagePort::bind(home, web.addr.clone(), web.no_web)?;
    let public_flags = PublicFlags {
        addr: public_web,
        // clap asks for both or neither.
        tls: tls_cert
            .zip(tls_key)
            .map(|(cert, key)| TlsFiles { cert, key }),
    };
    let public = PublicPort::bind(home, public_flags, hub)?;
    // The certificate too, before anything is made: a wrong file is an
    // error at start, not at a guest's first visit.
    let public_tls = match public.as_ref().and_then(PublicPort::tls) {
        Some(files) => Some(
            PublicTls::load(&files.cert, &files.key)
                .context("cannot serve the public pages over HTTPS")?,
        ),
        None => None,
    };
    let rt = runtime()?;
    // Then the control socket, before the home is opened: a command typed
    // from now on is handed to this node and answered once it runs,
    // instead of opening a home that is being made.
    #[cfg(unix)]
    let control = {
        let _runtime = rt.enter();
        potluck::app::control::ControlSocket::bind(home)?
    };
    let app = App::open(home, Access::Create)?;
    if app.created_identity() {
        welcome(home, &app, false, true)?;
    }
    rt.block_on(async move {
        let page_url = page.as_ref().map(PagePort::url);
        let (serving, mut tasks) = app.start(port, &options, page_url.clone()).await?;
        let me = app.feed_id()?;
        let mut started = format!("potluck node {me} listening on {}\n", serving.listen);
        if let Some(url) = &page_url {
            started.push_str(&format!("page: {url}\n"));
        }
        if let Some(public) = &public {
            let scheme = if public_tls.is_some() { "https" } else { "http" };
            started.push_str(&format!("public pages: {scheme}://{}/\n", public.addr()));
        }
        write_stdout(&started)?;
        tracing::info!(feed = %me, local = %serving.listen, page = page_url.as_deref().unwrap_or("off"), "listening");
        if let Some(public) = public {
            if let Some(tls) = &public_tls {
                tasks.push(reload_on_hangup(&app, tls.clone())?);
            }
            tasks.push(serve_public_pages(&app, public, public_tls)?);
        }
        if let Some(page) = page {
            let settings = potluck::web::WebSettings {
                token: page.token().map(str::to_owned),
                zone: potluck::web::system_zone(),
                invite_code: app.invite(None).ok().map(|invite| invite.code),
                extra_hosts: Vec::new(),
            };
            let addr = page.addr();
            let listener = TcpListener::from_std(page.into_listener())
                .with_context(|| format!("cannot serve the page on {addr}"))?;
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

/// Starts the hub's public pages on their port, over TLS with `tls`,
/// until the node stops.
fn serve_public_pages(
    app: &App,
    public: PublicPort,
    tls: Option<Arc<PublicTls>>,
) -> Result<tokio::task::JoinHandle<()>> {
    let settings = potluck::web::PublicSettings {
        network: public.network(),
        base_url: public.base_url().map(str::to_owned),
        answers: public.answers().clone(),
    };
    let transport = PublicTransport {
        tls,
        trusted_proxy: public.trusted_proxy(),
    };
    let addr = public.addr();
    tracing::info!(
        public_web = %addr,
        public_url = settings.base_url.as_deref().unwrap_or("none"),
        network = ?settings.network,
        tls = transport.tls.as_ref().map(|t| t.cert_path().display().to_string()).as_deref().unwrap_or("off"),
        trusted_proxy = ?transport.trusted_proxy,
        "serving the hub's public pages"
    );
    let listener = TcpListener::from_std(public.into_listener())
        .with_context(|| format!("cannot serve the public pages on {addr}"))?;
    let public_app = app.clone();
    Ok(tokio::spawn(async move {
        let stopping = public_app.clone();
        let shutdown = async move { stopping.stopped().await };
        if let Err(e) =
            potluck::web::serve_public(public_app, listener, settings, transport, shutdown).await
        {
            tracing::error!(error = %e, "the public pages stopped");
        }
    }))
}

/// Reads the public pages' certificate and key again on each SIGHUP
/// (after a renewal), until the node stops; a reload that fails is
/// logged and the certificate in use stays. Without TLS nothing listens
/// for SIGHUP, which then ends the process as it always did.
fn reload_on_hangup(app: &App, tls: Arc<PublicTls>) -> Result<tokio::task::JoinHandle<()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup())
            .context("cannot listen for SIGHUP (certificate reloads)")?;
        let stopping = app.clone();
        Ok(tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stopping.stopped() => return,
                    got = hangups.recv() => if got.is_none() { return },
                }
                match tls.reload() {
                    Ok(()) => {
                        tracing::info!(cert = %tls.cert_path().display(), "TLS certificate reloaded")
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "TLS certificate not reloaded: the one in use stays")
                    }
                }
            }
        }))
    }
    #[cfg(not(unix))]
    {
        let _ = (app, tls);
        Ok(tokio::spawn(async {}))
    }
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
