"""What `kb demo` asks: questions phrased as users write them, not copied from the articles."""

DEMO_QUESTIONS = (
    "Не приходят уведомления о новых задачах на почту, что проверить?",
    "Как дать сотруднику доступ только к одной форме?",
    "Бот не отвечает на вебхук, в логах ошибка подписи",
)

# The ticket `kb demo` files on the fake Pyrus for the bot to answer.
DEMO_TICKET = {
    "form_id": 321,
    "subject": "Перестали приходить письма о новых заявках",
    "fields": [
        {"id": 1, "code": "u_subject", "type": "text", "value": "Перестали приходить письма"},
        {
            "id": 2,
            "code": "u_description",
            "type": "text",
            "value": "Коллегам уведомления о новых заявках приходят на почту, а мне со вчерашнего "
            "дня нет. Что проверить?",
        },
    ],
    "text": "Коллегам уведомления о новых заявках приходят на почту, а мне нет.",
    # The customer wrote by e-mail: the draft the agent sends goes back that way.
    "channel": {"type": "email"},
}

# The agent who approves the bot's draft, and the command they write.
DEMO_AGENT = {"id": 1101, "type": "user"}
DEMO_SEND_COMMAND = "@Ассистент отправить"
