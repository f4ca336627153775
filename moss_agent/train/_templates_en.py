"""English phrasing templates: what users ask (families), what MOSS thinks and replies.

Same layout as :mod:`moss_agent.train._templates_zh`.
"""

from __future__ import annotations

__all__ = ["HUMAN", "REPLIES", "THOUGHTS"]

HUMAN: dict[str, list[str]] = {
    "calc.add": [
        "What's {a} plus {b}?",
        "Can you add {a} and {b}?",
        "Calculate {a}+{b}.",
        "{a} + {b} = ?",
        "Please compute the sum of {a} and {b}.",
        "How much is {a} added to {b}?",
    ],
    "calc.sub": [
        "What's {a} minus {b}?",
        "Subtract {b} from {a}.",
        "Calculate {a}-{b}.",
        "{a} - {b} = ?",
        "What is the difference between {a} and {b}?",
        "How much is {a} take away {b}?",
    ],
    "calc.mul": [
        "What's {a} times {b}?",
        "Multiply {a} by {b}.",
        "Calculate {a}*{b}.",
        "{a} x {b} = ?",
        "What is the product of {a} and {b}?",
        "How much is {a} multiplied by {b}?",
    ],
    "calc.div": [
        "What's {a} divided by {b}?",
        "Divide {a} by {b}.",
        "Calculate {a}/{b}.",
        "{a} / {b} = ?",
        "What is the quotient of {a} and {b}?",
        "If {a} is split into {b} equal parts, how big is each?",
    ],
    "calc.pow": [
        "What is {a} to the power of {b}?",
        "Calculate {a}^{b}.",
        "What's {a} raised to the {b}th power?",
        "Compute {a} to the {b}th power.",
        "How much is {a}^{b}?",
    ],
    "calc.sqrt": [
        "What is the square root of {n}?",
        "Calculate sqrt({n}).",
        "Find the square root of {n}.",
        "What's the square root of {n}?",
        "Compute the root of {n}, please.",
    ],
    "calc.percent": [
        "What is {p}% of {a}?",
        "Calculate {p} percent of {a}.",
        "How much is {p}% of {a}?",
        "Find {p}% of {a}.",
        "What's {p} percent of {a}?",
    ],
    "calc.mixed": [
        "What is ({a}+{b})*{c}?",
        "Add {a} and {b}, then multiply by {c}.",
        "Calculate ({a}+{b})*{c}.",
        "What do you get if you multiply the sum of {a} and {b} by {c}?",
        "Compute ({a} + {b}) x {c}.",
    ],
    "calc.price": [
        "{item} cost ${p} each. How much do {q} cost?",
        "If one of the {item} costs ${p}, what do {q} cost?",
        "I bought {q} {item} at ${p} each. What's the total?",
        "What is the total price of {q} {item} at ${p} apiece?",
        "How much would {q} {item} cost at ${p} per item?",
    ],
    "calc.discount": [
        "A jacket costs ${p}. What's the price with {d}% off?",
        "What is ${p} after a {d}% discount?",
        "An item priced at ${p} is {d}% off. What does it cost now?",
        "How much do I pay for a ${p} item with a {d}% discount?",
        "Take {d}% off ${p}.",
    ],
    "calc.convert": [
        "How many {dst} are in {v} {src}?",
        "Convert {v} {src} to {dst}.",
        "What is {v} {src} in {dst}?",
        "{v} {src} equals how many {dst}?",
        "Please change {v} {src} into {dst}.",
    ],
    "calc.average": [
        "What is the average of {nums}?",
        "Find the mean of {nums}.",
        "Calculate the average of {nums}.",
        "My test scores were {nums}. What's my average?",
        "What's the mean value of {nums}?",
    ],
    "calc.rect": [
        "What is the area of a rectangle {a} m long and {b} m wide?",
        "A rectangle is {a} meters by {b} meters. What is its area?",
        "Find the area of a {a} m by {b} m rectangle.",
        "How big is a field that is {a} m long and {b} m wide?",
    ],
    "calc.circle": [
        "What is the area of a circle with radius {r} m?",
        "A circle has a radius of {r} meters. What is its area?",
        "Find the area of a circle whose radius is {r} m.",
        "How large is a round pond with a {r} m radius?",
    ],
    "calc.tri": [
        "What is the area of a triangle with base {a} cm and height {h} cm?",
        "A triangle has a base of {a} cm and a height of {h} cm. Find its area.",
        "Find the area of a triangle, base {a} cm, height {h} cm.",
        "How big is a triangle {a} cm wide at the base and {h} cm tall?",
    ],
    "calc.speed": [
        "A car drove {d} km in {t} hours. What was its average speed?",
        "If I cycle {d} km in {t} hours, how fast am I going?",
        "What is the speed for {d} km covered in {t} hours?",
        "A train travels {d} km in {t} hours. How many km per hour is that?",
    ],
    "calc.fu_mul": [
        "Now multiply that by {n}.",
        "What if we multiply it by {n}?",
        "And times {n}?",
        "Multiply the result by {n}.",
    ],
    "calc.fu_add": ["Now add {n} to that.", "What if we add {n}?", "And plus {n}?", "Add {n} to the result."],
    "calc.fu_sub": [
        "Now subtract {n} from that.",
        "What if we take away {n}?",
        "And minus {n}?",
        "Subtract {n} from the result.",
    ],
    "calc.fu_div": [
        "Now divide that by {n}.",
        "What if we divide it by {n}?",
        "And divided by {n}?",
        "Divide the result by {n}.",
    ],
    "solve.linear": [
        "Solve {eq}.",
        "Solve the equation {eq} for {var}.",
        "What is {var} if {eq}?",
        "Find {var}: {eq}",
        "Can you solve {eq} for me?",
        "Given {eq}, what is {var}?",
    ],
    "solve.system": [
        "Solve the system {e1}, {e2}.",
        "Solve these equations: {e1} and {e2}.",
        "Find x and y if {e1} and {e2}.",
        "What are x and y when {e1}; {e2}?",
        "Solve for x and y: {e1}, {e2}",
    ],
    "solve.cage": [
        "{place} has {A} and {B}. There are {heads} and {legs} in total. How many {A} and how many {B}?",
        "I counted {heads} and {legs} among the {A} and {B} {place2}. How many of each are there?",
        "There are some {A} and {B} {place2}, with {heads} and {legs} altogether. How many {A} and {B}?",
        "{A} and {B} together have {heads} and {legs}. Find the number of {A} and {B}.",
        "A puzzle: {heads}, {legs}, only {A} and {B}. How many of each?",
        "If {A} and {B} {place2} have {heads} and {legs} in all, how many {A} and {B} are there?",
        "Count the {A} and {B}: {heads} and {legs} in total.",
        "{place} keeps {A} and {B}: {heads}, {legs}. How many {A}? How many {B}?",
    ],
    "search.population": [
        "What is the population of {entity}?",
        "How many people live in {entity}?",
        "Can you look up the population of {entity}?",
        "How big is the population of {entity}?",
        "Search for the number of residents of {entity}.",
        "Do you know how many people {entity} has?",
    ],
    "search.founder": [
        "Who founded {entity}?",
        "Who is the founder of {entity}?",
        "Can you find out who started {entity}?",
        "Look up the founder of {entity}.",
        "Which person founded {entity}?",
    ],
    "search.founded": [
        "When was {entity} founded?",
        "In which year was {entity} established?",
        "Look up the founding year of {entity}.",
        "How old is {entity}? When did it start?",
        "What year did {entity} begin?",
    ],
    "search.height": [
        "How tall is the {entity}?",
        "What is the height of the {entity}?",
        "Look up how high the {entity} is.",
        "How many meters tall is the {entity}?",
        "Do you know the height of the {entity}?",
    ],
    "search.event_date": [
        "When is the {entity}?",
        "What is the date of the {entity}?",
        "Look up when the {entity} takes place.",
        "On which day does the {entity} happen?",
        "Can you find the date of the {entity}?",
    ],
    "t2i.plain": [
        "Draw {subject}.",
        "Please paint {subject}.",
        "Generate an image of {subject}.",
        "Can you draw {subject} for me?",
        "I'd like a picture of {subject}.",
        "Make an image: {subject}",
    ],
    "t2i.styled": [
        "Draw {subject} in {style} style.",
        "Paint {subject}, {style}.",
        "Generate a {style} image of {subject}.",
        "Can you make a {style} picture of {subject}?",
        "I want {subject} as {style}.",
    ],
    "chat.greet": [
        "Good morning!",
        "Hey MOSS!",
        "Good evening.",
        "Hey, how's it going?",
        "Greetings!",
        "Morning!",
    ],
    "chat.thanks": [
        "Thanks a lot!",
        "Thank you so much.",
        "Thanks for your help.",
        "Much appreciated!",
        "Cheers, thanks.",
    ],
    "chat.identity": [
        "Who are you?",
        "Tell me about yourself.",
        "What's your name?",
        "Who made you?",
        "What can you do?",
    ],
    "chat.define": [
        "What is {concept}?",
        "Can you explain {concept}?",
        "Tell me what {concept} means.",
        "Give me a short explanation of {concept}.",
        "Define {concept}.",
        "I'd like to understand {concept}.",
    ],
    "chat.bye": ["Goodbye!", "See you later.", "Bye for now.", "Talk to you tomorrow."],
}

THOUGHTS: dict[str, list[str]] = {
    "calc.add": ["The user wants to add two numbers, I should use the calculator."],
    "calc.sub": ["The user wants to subtract two numbers, I should use the calculator."],
    "calc.mul": ["The user wants to multiply two numbers, I should use the calculator."],
    "calc.div": ["The user wants to divide two numbers, I should use the calculator."],
    "calc.pow": ["The user wants a power, I should use the calculator."],
    "calc.sqrt": ["The user wants a square root, I should use the calculator."],
    "calc.percent": ["The user wants a percentage of a number, I should use the calculator."],
    "calc.mixed": ["This is an arithmetic expression with parentheses, I should use the calculator."],
    "calc.price": ["The total is the unit price times the quantity, I should use the calculator."],
    "calc.discount": ["The discounted price is the price times (1 - discount), I should use the calculator."],
    "calc.convert": ["This is a unit conversion, I should use the calculator."],
    "calc.average": ["The average is the sum divided by the count, I should use the calculator."],
    "calc.rect": ["The area of a rectangle is length times width, I should use the calculator."],
    "calc.circle": ["The area of a circle is pi times the radius squared, I should use the calculator."],
    "calc.tri": ["The area of a triangle is base times height divided by 2, I should use the calculator."],
    "calc.speed": ["Average speed is distance divided by time, I should use the calculator."],
    "calc.followup": [
        "The user wants to continue from the previous result {prev}, I should use the calculator."
    ],
    "solve.linear": ["This is a linear equation in one unknown, I should use the equation solver."],
    "solve.system": ["This is a system of two linear equations, I should use the equation solver."],
    "solve.cage_v": [
        "Let x be the number of {A} and y the number of {B}; I need to solve a system of equations."
    ],
    "solve.cage": [
        "Let x be the number of {A} and y the number of {B}; I need to solve a system of equations."
    ],
    # --quote-counts: the two counts quoted from the question first, in a fixed form.
    "solve.cage_counts": [
        "There are {heads} and {legs}. Let x be the number of {A} and y the number of {B}; "
        "I need to solve a system of equations."
    ],
    "solve.cage_v_counts": [
        "There are {heads} and {legs}. Let x be the number of {A} and y the number of {B}; "
        "I need to solve a system of equations."
    ],
    "search": [
        "The user asks for the {attr} of {entity}, I need to search for it.",
        "I should search the web for the {attr} of {entity}.",
    ],
    "t2i": ["The user wants a picture, I should use the text-to-image tool."],
    "chat.greet": ["This is a greeting, no tool is needed."],
    "chat.thanks": ["The user is thanking me, no tool is needed."],
    "chat.identity": ["The user asks about me, I can answer directly without tools."],
    "chat.define": ["This is a general knowledge question, I can answer directly without tools."],
    "chat.bye": ["The user is saying goodbye, no tool is needed."],
    "disabled.Calculate": ["This needs a calculation, but the calculator is disabled, so I cannot call it."],
    "disabled.Solve": ["This needs an equation solver, but it is disabled, so I cannot call it."],
    "disabled.Search": ["This needs a web search, but search is disabled, so I cannot call it."],
    "disabled.Text2Image": ["The user wants a picture, but text-to-image is disabled, so I cannot call it."],
}

REPLIES: dict[str, list[str]] = {
    "calc.arith": ["{pretty} {eq} {ans}.", "The result is {about}{ans}."],
    "calc.price": ["The total is {about}${ans}.", "That comes to {about}${ans} in total."],
    "calc.discount": ["After the discount it costs {about}${ans}."],
    "calc.convert": ["{v} {src} is {about}{ans} {dst}."],
    "calc.average": ["The average is {about}{ans}."],
    "calc.rect": ["The area of the rectangle is {about}{ans} square meters."],
    "calc.circle": ["The area of the circle is about {ans} square meters."],
    "calc.tri": ["The area of the triangle is {about}{ans} square centimeters."],
    "calc.speed": ["The average speed is {about}{ans} km per hour."],
    "calc.failed": ["Sorry, I could not compute that expression. Please check the input."],
    "solve.linear": ["The solution is {var} = {val}.", "Solving it gives {var} = {val}."],
    "solve.system": ["The solution is x = {x}, y = {y}."],
    "solve.cage": ["There are {x} {A} and {y} {B}."],
    # --restate-solutions: the solution first, as the Results wrote it (a copy), then the names.
    "solve.cage_restated": ["x = {x} and y = {y}, so there are {x} {A} and {y} {B}."],
    # --pair-solutions: each solver line, then at once the animal it counts (the nearest copy).
    "solve.cage_paired": ["x = {x}, so there are {x} {A}; y = {y}, so there are {y} {B}."],
    "solve.failed": ["Sorry, this equation has no unique solution."],
    "search.population": ["According to the search results, {entity} has a population of {answer}."],
    "search.founder": ["According to the search results, {entity} was founded by {answer}."],
    "search.founded": ["According to the search results, {entity} was established in {answer}."],
    "search.height": ["According to the search results, the {entity} is {answer} tall."],
    "search.event_date": ["According to the search results, the {entity} takes place on {answer}."],
    "search.failed": ["Sorry, I could not find the {attr} of {entity}."],
    "t2i": ["Here is the image of {subject}.", "Done! I generated a picture of {subject}."],
    "chat.greet": ["Good to see you! I'm MOSS. How can I help you today?"],
    "chat.thanks": ["You're welcome! Let me know if there is anything else."],
    "chat.identity": [
        "I'm MOSS, a conversational language model developed by Fudan University. I can calculate, "
        "solve equations, search for information and draw pictures."
    ],
    "chat.define": ["{definition}"],
    "chat.bye": ["Goodbye! Have a nice day."],
    "disabled.Calculate": ["Sorry, the calculator is disabled right now, so I can't compute this exactly."],
    "disabled.Solve": ["Sorry, the equation solver is disabled right now, so I can't solve this for you."],
    "disabled.Search": [
        "Sorry, web search is disabled right now, so I can't look up the {attr} of {entity}."
    ],
    "disabled.Text2Image": ["Sorry, text-to-image is disabled right now, so I can't draw {subject}."],
}
