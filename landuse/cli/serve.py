"""``landuse serve``: a local model behind the Custom Vision prediction API."""

from __future__ import annotations

import click

from landuse.serve import ENV_SERVE_KEY


@click.command()
@click.argument("model", required=False)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--project-id", default=None, help="Serve only this project id (others: 404 NotFoundProject).")
@click.option("--published-name", default=None, help="Serve only this published name (others: 404 NotFoundIteration).")
@click.option("--enable-url-routes", is_flag=True, help="Also serve the .../url routes (the server then fetches URLs).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Serve config (TOML, `key = ...`); default ~/.config/landuse/serve.toml.")
def command(
    model: str | None,
    host: str,
    port: int,
    project_id: str | None,
    published_name: str | None,
    enable_url_routes: bool,
    config_path: str | None,
) -> None:
    """Serve MODEL (default model, export folder/zip, .onnx, or py:module:factory) with the
    Custom Vision prediction API, so SDK code runs against it unchanged.

    The Prediction-Key comes from $LANDUSE_SERVE_KEY or the config file; if neither is set, a
    key is generated and printed once.
    """
    from landuse.serve import create_app, is_loopback, load_served_model, resolve_key, run_server

    classifier = load_served_model(model)
    key, generated = resolve_key(config_path)
    app = create_app(classifier, key, project_id=project_id, published_name=published_name,
                     enable_url_routes=enable_url_routes)
    if generated:
        click.echo(f"landuse serve: generated Prediction-Key {key} (set {ENV_SERVE_KEY} to choose one)", err=True)
    if not is_loopback(host):
        click.echo(f"landuse serve: warning: binding {host} exposes the model beyond this machine", err=True)
    click.echo(
        f"landuse serve: {getattr(classifier, 'model_id', model)} ({', '.join(classifier.labels)}) on "
        f"http://{host}:{port}/customvision/v3.1/prediction/{project_id or '<project>'}/classify/iterations/"
        f"{published_name or '<name>'}/image",
        err=True,
    )
    run_server(app, host=host, port=port)
