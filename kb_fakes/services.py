"""Both fakes seeded with the sample data, started together (demo, `kb fakes`, tests)."""

from __future__ import annotations

from dataclasses import dataclass

from kb_fakes.confluence import ConfluenceStore, create_confluence_app
from kb_fakes.jira import TOKEN as JIRA_TOKEN
from kb_fakes.jira import JiraStore, create_jira_app
from kb_fakes.pyrus import BOT_LOGIN, BOT_SECURITY_KEY, PyrusStore, create_pyrus_app
from kb_fakes.server import ServerThread

CONFLUENCE_TOKEN = "fake-confluence-token"
SAMPLE_SPACES = "SUP,ADM,INT"
SAMPLE_HELPDESK_FORM = 321
SAMPLE_CORRECTIONS_FORM = 322
SAMPLE_BOT_IDS = "9000,9001"
SAMPLE_JIRA_PROJECTS = "HD,INT"
SAMPLE_JIRA_BOTS = "automation.bot"


@dataclass
class FakeServices:
    confluence: ServerThread
    pyrus: ServerThread
    confluence_store: ConfluenceStore
    pyrus_store: PyrusStore
    jira: ServerThread | None = None
    jira_store: JiraStore | None = None

    def env(self) -> dict[str, str]:
        """The settings that point the product at these fakes."""
        return {
            "KB_CONFLUENCE_URL": self.confluence.url,
            "KB_CONFLUENCE_SPACES": SAMPLE_SPACES,
            "KB_CONFLUENCE_TOKEN": CONFLUENCE_TOKEN,
            "KB_PYRUS_API_URL": f"{self.pyrus.url}/v4",
            "KB_PYRUS_AUTH_URL": f"{self.pyrus.url}/v4",
            "KB_PYRUS_LOGIN": BOT_LOGIN,
            "KB_PYRUS_SECURITY_KEY": BOT_SECURITY_KEY,
            "KB_PYRUS_FORM_IDS": str(SAMPLE_HELPDESK_FORM),
            "KB_PYRUS_CORRECTIONS_FORM_ID": str(SAMPLE_CORRECTIONS_FORM),
            "KB_PYRUS_BOT_IDS": SAMPLE_BOT_IDS,
            **(
                {
                    "KB_JIRA_URL": self.jira.url,
                    "KB_JIRA_PROJECTS": SAMPLE_JIRA_PROJECTS,
                    "KB_JIRA_TOKEN": JIRA_TOKEN,
                    "KB_JIRA_BOT_ACCOUNTS": SAMPLE_JIRA_BOTS,
                }
                if self.jira is not None
                else {}
            ),
        }

    def stop(self) -> None:
        self.confluence.stop()
        self.pyrus.stop()
        if self.jira is not None:
            self.jira.stop()


def start_fakes(
    host: str = "127.0.0.1",
    confluence_port: int = 0,
    pyrus_port: int = 0,
    confluence_store: ConfluenceStore | None = None,
    pyrus_store: PyrusStore | None = None,
    jira_port: int = 0,
    jira_store: JiraStore | None = None,
) -> FakeServices:
    confluence_store = confluence_store or ConfluenceStore.from_samples()
    pyrus_store = pyrus_store or PyrusStore.from_samples()
    confluence = ServerThread(
        create_confluence_app(confluence_store, token=CONFLUENCE_TOKEN), host, confluence_port
    ).start()
    pyrus = ServerThread(create_pyrus_app(pyrus_store), host, pyrus_port).start()
    jira_store = jira_store or JiraStore.from_samples()
    jira = ServerThread(create_jira_app(jira_store), host, jira_port).start()
    return FakeServices(confluence, pyrus, confluence_store, pyrus_store, jira, jira_store)
