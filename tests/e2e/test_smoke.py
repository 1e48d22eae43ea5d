from tests.harness import BotHarness


def test_incident_help(bot: BotHarness) -> None:
    reply = bot.reply_after("/incident", "help")
    assert "/incident declare" in str(reply)
