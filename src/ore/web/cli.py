"""``ore serve``: the web application on the workspace (uvicorn).

Registered in ``ore.cli`` as a command; kept here so the web's options live with the web.
Plain HTTP is for the loopback address only: the session cookie is ``Secure``, so a browser
elsewhere needs TLS (``--ssl-certfile``/``--ssl-keyfile``) or a TLS-terminating proxy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="The web application.", no_args_is_help=True)


@app.command()
def serve(
    workspace: Annotated[
        Path | None, typer.Option("--workspace", "-w", envvar="ORE_WORKSPACE", help="Workspace directory.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback unless behind TLS).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    reference: Annotated[
        Path | None, typer.Option("--reference", "-r", help="Reference holdings used by every web import.")
    ] = None,
    postcodes: Annotated[Path | None, typer.Option("--postcodes", help="ONS postcode lookup for web imports.")] = None,
    workers: Annotated[int, typer.Option(help="Threads for requests (uvicorn runs one process).")] = 40,
    ssl_certfile: Annotated[Path | None, typer.Option("--ssl-certfile", help="TLS certificate (PEM).")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option("--ssl-keyfile", help="TLS private key (PEM).")] = None,
) -> None:
    """Serve the pages and the /api/v1 API of a workspace."""
    run(workspace, host=host, port=port, reference=reference, postcodes=postcodes, workers=workers,
        ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)


def run(workspace: Path | None, *, host: str = "127.0.0.1", port: int = 8000, reference: Path | None = None,
        postcodes: Path | None = None, workers: int = 40, ssl_certfile: Path | None = None,
        ssl_keyfile: Path | None = None) -> None:
    """Open the workspace and run uvicorn until stopped."""
    import uvicorn

    from ore.config import get_settings
    from ore.web.app import create_app
    from ore.workspace import Workspace

    ws = Workspace.open(workspace, get_settings())
    application = create_app(ws, reference=reference, postcodes=postcodes, threads=workers)

    # log_config=None: uvicorn's records go through ore's logging (ore.ops.logs), whose filter
    # redacts card numbers, emails and postcodes, instead of handlers of uvicorn's own
    uvicorn.run(application, host=host, port=port, log_level="info", proxy_headers=False, log_config=None,
                ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
                ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None)


serve_command = serve  # for ore.cli: app.command("serve")(serve_command)
