//! `tunnel443 connect`: stdin/stdout or a local port through a CONNECT chain (placeholder).

#[derive(clap::Args, Debug)]
pub struct ConnectArgs {}

pub async fn run(_args: ConnectArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
