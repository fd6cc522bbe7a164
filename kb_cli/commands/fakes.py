"""`kb fakes`: the fake Confluence, Pyrus, embedding server and LLM, for trying things."""

from __future__ import annotations

from typing import Annotated

import typer

from kb_cli.output import console


def fakes_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    confluence_port: Annotated[int, typer.Option(help="Port of the fake Confluence.")] = 8081,
    pyrus_port: Annotated[int, typer.Option(help="Port of the fake Pyrus.")] = 8082,
    embeddings_port: Annotated[
        int, typer.Option(help="Port of the fake OpenAI-compatible embedding server.")
    ] = 8083,
    llm_port: Annotated[int, typer.Option(help="Port of the fake OpenAI-compatible LLM.")] = 8084,
) -> None:
    """Run the fake Confluence, Pyrus (sample data), embedding server and LLM until Ctrl-C."""
    import threading

    from kb_fakes.embeddings import FAKE_EMBEDDING_KEY, create_embeddings_app
    from kb_fakes.llm import FAKE_LLM_KEY, start_fake_llm
    from kb_fakes.server import ServerThread
    from kb_fakes.services import start_fakes

    fakes = start_fakes(host, confluence_port, pyrus_port)
    embeddings = ServerThread(create_embeddings_app(), host, embeddings_port).start()
    llm = start_fake_llm(host, llm_port)
    console.print(f"fake Confluence: {fakes.confluence.url}   fake Pyrus: {fakes.pyrus.url}")
    console.print("Point the product at them with:")
    for key, value in fakes.env().items():
        console.print(f"  export {key}={value}")
    console.print(f"fake embedding server (hashed bag of words): {embeddings.url}/v1")
    console.print("To try the HTTP embedding provider against it:")
    console.print(f"  export KB_EMBEDDER=openai KB_EMBEDDING_URL={embeddings.url}/v1")
    console.print(f"  export KB_EMBEDDING_API_KEY={FAKE_EMBEDDING_KEY}")
    console.print(f"fake LLM (deterministic, JSON mode): {llm.url}/v1")
    console.print(f"  export KB_LLM_URL={llm.url}/v1 KB_LLM_API_KEY={FAKE_LLM_KEY}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        llm.stop()
        embeddings.stop()
        fakes.stop()
