"""The triage page's files (``index.html``, ``ui.js``, ``ui.css``), served by
``service.routes.ui``."""
