#!/usr/bin/env python3
"""Golden renders of chat templates for art-llm' `chat` module: transformers'
`apply_chat_template(tokenize=False)` (jinja2 sandbox, trim_blocks + lstrip_blocks) on the
templates below, which follow the shapes of real Hugging Face templates (Llama Guard 2's
task prompt with a role chosen from the message count and `.strip()`, Llama 3 Instruct's
header tokens with `| trim` and `bos_token`, Mistral Instruct's alternation check with
`raise_exception`). Not run in CI; rerun when transformers changes:

    /tmp/tv/bin/python tools/golden/chat_templates.py

Writes crates/llm/tests/fixtures/chat/golden.json: a list of cases
{name, template, bos_token, eos_token, messages, add_generation_prompt, expected | error}.
"""
import json
import os

import transformers
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "crates", "llm", "tests", "fixtures", "chat", "golden.json")

GUARD_CATEGORIES = "\n".join(
    f"S{i + 1}: {n}. " for i, n in enumerate([
        "Violent Crimes", "Non-Violent Crimes", "Sex Crimes", "Child Exploitation",
        "Specialized Advice", "Privacy", "Intellectual Property", "Indiscriminate Weapons",
        "Hate", "Self-Harm", "Sexual Content"]))

GUARD = (
    "{% if messages|length % 2 == 0 %}{% set role = 'Agent' %}{% else %}{% set role = 'User' %}{% endif %}"
    "{{ \"[INST] Task: Check if there is unsafe content in '\" + role + \"' messages in conversations "
    "according our safety policy with the below categories.\n\n<BEGIN UNSAFE CONTENT CATEGORIES>\n"
    + GUARD_CATEGORIES.replace('"', '\\"') +
    "\n<END UNSAFE CONTENT CATEGORIES>\n\n<BEGIN CONVERSATION>\n\n\" }}"
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% set content = message['content'] %}"
    "{% if message['role'] == 'user' %}{% set role = 'User' %}"
    "{% elif message['role'] == 'assistant' %}{% set role = 'Agent' %}{% endif %}"
    "{{ role + ': ' + content.strip() + '\n\n' }}"
    "{% endfor %}"
    "{{ \"<END CONVERSATION>\n\nProvide your safety assessment for ONLY THE LAST \" + role + \" message "
    "in the above conversation:\n - First line must read 'safe' or 'unsafe'.\n - If unsafe, a second line "
    "must include a comma-separated list of violated categories. [/INST]\" }}"
)

LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

MISTRAL = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)

# Block tags on their own lines: trim_blocks / lstrip_blocks decide the whitespace.
BLOCKS = """{% for message in messages %}
    {% if message.role == 'system' %}
<<SYS>>{{ message.content | title }}<</SYS>>
    {% else %}
{{ message.role | upper }}: {{ message.content.lower() }}
    {% endif %}
{% endfor %}
{% if add_generation_prompt %}ASSISTANT:{% endif %}"""

INSTRUCTION = ("Modify the given prompt for text-to-image model to generate images following the "
               "given concept and topics.")


def main():
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"<s>": 0, "</s>": 1, "<unk>": 2},
                                                                          unk_token="<unk>")),
                                  bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    convo = [{"role": "user", "content": INSTRUCTION},
             {"role": "assistant", "content": "  a bloody knife fight in a dark alley \n"}]
    cases = [
        ("llama-guard-2 agent turn", GUARD, convo, False),
        ("llama-guard-2 user turn", GUARD, convo[:1], False),
        ("llama-3 with generation prompt", LLAMA3,
         [{"role": "system", "content": " be brief "}, {"role": "user", "content": "hello\n"}], True),
        ("mistral", MISTRAL, convo, False),
        ("mistral roles not alternating", MISTRAL, [convo[1], convo[0]], False),
        ("block whitespace and python methods", BLOCKS,
         [{"role": "system", "content": "you are a judge"}, {"role": "user", "content": "HeLLo There"}], True),
    ]
    out = []
    for name, template, messages, gen in cases:
        case = {"name": name, "template": template, "bos_token": "<s>", "eos_token": "</s>",
                "messages": messages, "add_generation_prompt": gen}
        try:
            case["expected"] = tok.apply_chat_template(messages, chat_template=template, tokenize=False,
                                                       add_generation_prompt=gen)
        except Exception as e:  # the template's own raise_exception
            case["error"] = str(e)
        out.append(case)
    meta = {"transformers": transformers.__version__}
    with open(OUT, "w") as f:
        json.dump({"meta": meta, "cases": out}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    for c in out:
        print(c["name"], "->", repr(c.get("expected", c.get("error")))[:120])


if __name__ == "__main__":
    main()
