// The interactive API reference (GET /api): reads openapi.json from this server, renders every
// operation (parameters, request body, responses) and gives each HTTP operation a "try it" form
// that sends the request with fetch() and shows the answer. Content is set with textContent
// only (never parsed as HTML); the page's Content-Security-Policy allows this file alone.
"use strict";

(function () {
  const root = document.getElementById("operations");

  function element(tag, properties, children) {
    const node = document.createElement(tag);
    Object.assign(node, properties || {});
    for (const child of children || []) {
      node.append(child);
    }
    return node;
  }

  function resolve(doc, value, depth) {
    // Inline "#/components/..." references, for reading (the document has no cycles; the
    // depth bound keeps a future one from hanging the page).
    if (depth > 12 || value === null || typeof value !== "object") {
      return value;
    }
    if (Array.isArray(value)) {
      return value.map((item) => resolve(doc, item, depth + 1));
    }
    if (typeof value.$ref === "string" && value.$ref.startsWith("#/")) {
      let target = doc;
      for (const part of value.$ref.slice(2).split("/")) {
        target = target === undefined ? undefined : target[part];
      }
      return resolve(doc, target, depth + 1);
    }
    const copy = {};
    for (const [key, item] of Object.entries(value)) {
      copy[key] = resolve(doc, item, depth + 1);
    }
    return copy;
  }

  function parameterTable(parameters) {
    const rows = parameters.map((parameter) =>
      element("tr", {}, [
        element("td", {}, [element("code", { textContent: parameter.name })]),
        element("td", { textContent: parameter.in + (parameter.required ? ", required" : "") }),
        element("td", { textContent: parameter.description || "" }),
        element("td", {}, [element("code", { textContent: JSON.stringify(parameter.schema) })]),
      ])
    );
    return element("table", { className: "parameters" }, rows);
  }

  function responseList(responses) {
    return element(
      "ul",
      { className: "responses" },
      Object.entries(responses).map(([status, response]) =>
        element("li", {}, [
          element("code", { textContent: status }),
          " " + (response.description || "") +
            (response.content ? " (" + Object.keys(response.content).join(", ") + ")" : ""),
        ])
      )
    );
  }

  function tryItForm(path, verb, operation) {
    const parameters = operation.parameters || [];
    const inputs = parameters.map((parameter) => {
      const input = element("input", {
        name: parameter.name,
        required: Boolean(parameter.required && parameter.in === "path"),
      });
      input.dataset.in = parameter.in;
      return element("label", {}, [parameter.name + " (" + parameter.in + ") ", input]);
    });
    const fields = [...inputs];
    let token = null;
    if (operation.security && operation.security.length) {
      token = element("input", { name: "token", placeholder: "access token (JWT)" });
      fields.push(element("label", {}, ["Authorization: Bearer ", token]));
    }
    let body = null;
    if (operation.requestBody) {
      body = element("textarea", { name: "body", placeholder: "JSON body" });
      fields.push(element("label", {}, ["Body (JSON)", body]));
    }
    const answer = element("pre", { className: "answer" });
    const form = element("form", { className: "try-it" }, [
      ...fields,
      element("button", { type: "submit", textContent: "Send " + verb.toUpperCase() + " " + path }),
      answer,
    ]);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      let url = path;
      const query = new URLSearchParams();
      const headers = {};
      for (const label of inputs) {
        const input = label.querySelector("input");
        if (input.dataset.in === "path") {
          url = url.replace("{" + input.name + "}", encodeURIComponent(input.value));
        } else if (input.dataset.in === "query" && input.value !== "") {
          query.append(input.name, input.value);
        } else if (input.dataset.in === "header" && input.value !== "") {
          headers[input.name] = input.value;
        }
      }
      if (token && token.value !== "") {
        headers.Authorization = "Bearer " + token.value;
      }
      const init = { method: verb.toUpperCase(), headers: headers };
      if (body && body.value !== "") {
        headers["Content-Type"] = "application/json";
        init.body = body.value;
      }
      // Relative to this page, so that a reverse proxy's path prefix is kept.
      const target = url.slice(1) + (query.toString() ? "?" + query.toString() : "");
      delete answer.dataset.status;
      answer.textContent = "…";
      try {
        const response = await fetch(target || "./", init);
        let text = await response.text();
        try {
          text = JSON.stringify(JSON.parse(text), null, 2);
        } catch (notJson) {
          // shown as it came
        }
        answer.textContent =
          response.status + " " + response.statusText + "\n" +
          (response.headers.get("content-type") || "") + "\n\n" + text;
        answer.dataset.status = String(response.status);
      } catch (error) {
        answer.textContent = "no answer: " + error;
        answer.dataset.status = "error";
      }
    });
    return form;
  }

  function operationArticle(doc, path, verb, operation) {
    const websocket = Boolean(operation["x-websocket"]);
    const method = websocket ? "websocket" : verb;
    const article = element("article", { className: "operation", id: operation.operationId }, [
      element("h3", {}, [
        element("span", { className: "method method-" + method, textContent: method.toUpperCase() }),
        " ",
        element("code", { className: "path", textContent: path }),
        " " + (operation.summary || ""),
      ]),
    ]);
    article.dataset.method = method.toUpperCase();
    article.dataset.path = path;
    if (operation.description) {
      article.append(element("p", { textContent: operation.description }));
    }
    if (operation.security && operation.security.length) {
      article.append(element("p", { textContent: "Needs Authorization: Bearer <access token>." }));
    }
    const parameters = resolve(doc, operation.parameters || [], 0);
    if (parameters.length) {
      article.append(element("h4", { textContent: "Parameters" }), parameterTable(parameters));
    }
    if (operation.requestBody) {
      const requestBody = resolve(doc, operation.requestBody, 0);
      article.append(
        element("h4", { textContent: "Request body" }),
        element("pre", { textContent: JSON.stringify(requestBody.content, null, 2) })
      );
    }
    article.append(
      element("h4", { textContent: "Responses" }),
      responseList(resolve(doc, operation.responses, 0))
    );
    if (websocket) {
      article.append(element("p", { textContent: "A websocket: open it with a websocket client." }));
    } else {
      article.append(tryItForm(path, verb, { ...operation, parameters: parameters }));
    }
    return article;
  }

  function render(doc) {
    root.textContent = "";
    document.getElementById("api-version").textContent = doc.info.version;
    root.append(element("p", { textContent: doc.info.description }));
    for (const tag of doc.tags) {
      const section = element("section", { className: "tag" }, [
        element("h2", { textContent: tag.name }),
      ]);
      for (const [path, item] of Object.entries(doc.paths)) {
        for (const [verb, operation] of Object.entries(item)) {
          if ((operation.tags || [])[0] === tag.name) {
            section.append(operationArticle(doc, path, verb, operation));
          }
        }
      }
      root.append(section);
    }
    root.dataset.operations = String(root.querySelectorAll("article.operation").length);
  }

  fetch("openapi.json")
    .then((response) => {
      if (!response.ok) {
        throw new Error("openapi.json answered " + response.status);
      }
      return response.json();
    })
    .then(render)
    .catch((error) => {
      root.textContent = "Could not load openapi.json: " + error;
    });
})();
