"""What `kb demo` asks: questions phrased as users write them, not copied from the articles."""

DEMO_QUESTIONS = (
    "Не приходят уведомления о новых задачах на почту, что проверить?",
    "Как дать сотруднику доступ только к одной форме?",
    "Бот не отвечает на вебхук, в логах ошибка подписи",
)
