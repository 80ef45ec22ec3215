"""Small Sphinx fixes for the built book, so that a reader's browser shows no JavaScript errors.

- sphinx-thebe (and sphinx-togglebutton) register their inline scripts a second time, with
  a file name of ``''`` instead of ``None``; the repeated ``const THEBE_JS_URL`` is a
  JavaScript error on every page. Keep the first copy of each identical script.
"""


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        attrs = getattr(js, "attributes", {}) or {}
        key = (getattr(js, "filename", None) or "", tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

