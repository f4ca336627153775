"""The MOSS plugins as safe tools: a plain function and a LangChain tool each.

- :mod:`moss_agent.tools.calculator` — ``calculate(expression)``
- :mod:`moss_agent.tools.solver` — ``solve(equation)``
- :mod:`moss_agent.tools.search` — ``search(query)`` over ddgs or a local corpus
- :mod:`moss_agent.tools.text2image` — ``text2image(description)`` with diffusers
- :mod:`moss_agent.tools.registry` — MOSS API names → tools, running calls with limits
"""
