//! `tunnel443 proxy`: a CONNECT-only forward proxy (placeholder).

#[derive(clap::Args, Debug)]
pub struct ProxyArgs {}

pub async fn run(_args: ProxyArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
