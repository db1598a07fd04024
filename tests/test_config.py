from decimal import Decimal
from pathlib import Path

import pytest

from agentrig.config import load_settings
from agentrig.errors import ConfigError

TOML = """
log_level = "INFO"

[llm]
attempt_timeout = 30

[llm.providers.openai]
kind = "openai"
api_key_env = "OPENAI_API_KEY"

[llm.providers.openai.models."gpt-4o-mini"]
input_price = 0.15
output_price = 0.60

[llm.roles]
default = ["openai/gpt-4o-mini", "local/smollm2"]

[llm.budgets.default]
monthly_usd = 50
weekly_usd = 15
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_are_the_embedded_ones(tmp_path):
    settings = load_settings()
    assert settings.data_dir == tmp_path / "data"
    assert settings.effective_database_url == f"sqlite+aiosqlite:///{tmp_path / 'data'}/agentrig.db"
    assert settings.llm.roles["default"] == ["local/smollm2"]
    assert settings.llm.roles["embed"] == ["local/all-minilm-l6-v2"]
    assert settings.llm.providers["local"].kind == "local"


def test_reads_the_toml_file(tmp_path):
    settings = load_settings(write(tmp_path / "a.toml", TOML))
    assert settings.log_level == "INFO"
    assert settings.llm.attempt_timeout == 30
    assert settings.llm.roles["default"] == ["openai/gpt-4o-mini", "local/smollm2"]
    assert settings.llm.roles["fast"] == ["local/smollm2"]  # built-in roles stay
    assert settings.llm.providers["openai"].models["gpt-4o-mini"].output_price == Decimal("0.60")
    assert "local" in settings.llm.providers  # built-in provider stays
    assert settings.llm.budgets["default"].weekly_usd == Decimal(15)


def test_agentrig_toml_in_the_working_directory_is_found(tmp_path):
    write(tmp_path / "agentrig.toml", 'log_level = "ERROR"\n')
    assert load_settings().log_level == "ERROR"


def test_agentrig_config_variable_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTRIG_CONFIG", str(write(tmp_path / "b.toml", TOML)))
    assert load_settings().llm.attempt_timeout == 30


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTRIG_LLM__ATTEMPT_TIMEOUT", "12.5")
    monkeypatch.setenv("AGENTRIG_DATABASE_URL", "postgresql://db.example/agentrig")
    settings = load_settings(write(tmp_path / "c.toml", TOML))
    assert settings.llm.attempt_timeout == 12.5
    assert settings.effective_database_url == "postgresql+asyncpg://db.example/agentrig"


def test_api_key_is_read_from_the_named_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    settings = load_settings(write(tmp_path / "d.toml", TOML))
    assert settings.llm.providers["openai"].api_key == "sk-test"


def test_bad_type_names_key_value_and_expectation(tmp_path):
    path = write(tmp_path / "e.toml", "[llm]\nmax_attempts = 'many'\n")
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    message = str(error.value)
    assert "llm.max_attempts" in message and "'many'" in message and "integer" in message


def test_out_of_range_value_is_explained(monkeypatch):
    monkeypatch.setenv("AGENTRIG_LLM__ATTEMPT_TIMEOUT", "-1")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert "llm.attempt_timeout" in str(error.value) and "greater than 0" in str(error.value)


def test_role_naming_an_unknown_provider(tmp_path):
    path = write(tmp_path / "f.toml", '[llm.roles]\ndefault = ["nowhere/model"]\n')
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    message = str(error.value)
    assert "llm.roles.default[0]" in message and "nowhere" in message and "local" in message


def test_role_entry_without_a_model(tmp_path):
    path = write(tmp_path / "g.toml", '[llm.roles]\nfast = ["local"]\n')
    with pytest.raises(
        ConfigError, match=r"llm.roles.fast\[0\] = 'local': expected 'provider/model'"
    ):
        load_settings(path)


def test_budget_for_an_unknown_role(tmp_path):
    path = write(tmp_path / "h.toml", "[llm.budgets.nope]\nmonthly_usd = 1\n")
    with pytest.raises(ConfigError, match=r"llm.budgets.nope: no such role"):
        load_settings(path)


def test_unknown_key_and_unknown_provider_kind(tmp_path):
    path = write(tmp_path / "i.toml", "colour = 'blue'\n[llm.providers.x]\nkind = 'telepathy'\n")
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    message = str(error.value)
    assert "colour" in message and "llm.providers.x.kind" in message and "'telepathy'" in message


def test_missing_file_and_broken_toml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(write(tmp_path / "j.toml", "[llm\n"))


def test_example_file_is_valid():
    example = Path(__file__).parents[1] / "agentrig.example.toml"
    settings = load_settings(example)
    assert settings.llm.roles["default"][0].count("/") == 1
