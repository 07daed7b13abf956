"""Word lists and text templates for the demo workspace (store/demo/).

Every name here is made up by combining words; domains use the reserved `.example`
TLD, so no generated company can be mistaken for (or email) a real one.
"""

from __future__ import annotations


def _split(text: str) -> list[str]:
    return text.split()


# Company names: "<prefix> <suffix>"; the suffix decides the industry.
COMPANY_PREFIXES = _split("""
    Aurora Basalt Beacon Birchwood Bluefin Brightwater Cobalt Copperline Crestview Driftwood Ember
    Evergreen Falconridge Fernhill Fjordline Foxglove Glacier Granite Greenhaven Harborview
    Hawthorne Helios Ironbark Juniper Kestrel Lakeshore Lanternfish Larkspur Lumen Maplestone
    Meridian Mistral Moonrise Nimbus Oakhurst Obsidian Orchard Palisade Pinecrest Quarry Quillon
    Redwood Ridgeline Riverbend Saltmarsh Sandpiper Sequoia Silverleaf Skylark Solstice Stonebridge
    Summit Tamarack Tidewater Timberline Topaz Trillium Umbra Vantage Verdant Westwind Willowmere
    Windrose Yellowpine Zephyr Alder Bramble Cinder Dovetail Elmstead
""")

# suffix -> industry
COMPANY_SUFFIXES = {
    "Logistics": "Logistics",
    "Freight": "Logistics",
    "Fleet Services": "Logistics",
    "Analytics": "Software",
    "Software": "Software",
    "Systems": "Software",
    "Cloud": "Software",
    "Labs": "Biotech",
    "Therapeutics": "Biotech",
    "Health": "Healthcare",
    "Clinics": "Healthcare",
    "Foods": "Food & Beverage",
    "Brewing": "Food & Beverage",
    "Energy": "Energy",
    "Solar": "Energy",
    "Manufacturing": "Manufacturing",
    "Robotics": "Manufacturing",
    "Materials": "Manufacturing",
    "Financial": "Financial Services",
    "Capital": "Financial Services",
    "Insurance": "Insurance",
    "Retail": "Retail",
    "Outfitters": "Retail",
    "Media": "Media",
    "Studios": "Media",
    "Construction": "Construction",
    "Engineering": "Construction",
    "Hospitality": "Hospitality",
    "Education": "Education",
    "Telecom": "Telecommunications",
}

# (country, region, city, phone prefix, random digits after the prefix, contact time zone)
LOCATIONS = [
    ("US", "NA", "San Francisco", "+1415555", 4, "America/Los_Angeles"),
    ("US", "NA", "Seattle", "+1206555", 4, "America/Los_Angeles"),
    ("US", "NA", "Portland", "+1503555", 4, "America/Los_Angeles"),
    ("US", "NA", "Denver", "+1303555", 4, "America/Denver"),
    ("US", "NA", "Austin", "+1512555", 4, "America/Chicago"),
    ("US", "NA", "Chicago", "+1312555", 4, "America/Chicago"),
    ("US", "NA", "New York", "+1212555", 4, "America/New_York"),
    ("US", "NA", "Boston", "+1617555", 4, "America/New_York"),
    ("US", "NA", "Atlanta", "+1404555", 4, "America/New_York"),
    ("CA", "NA", "Toronto", "+1416555", 4, "America/Toronto"),
    ("CA", "NA", "Vancouver", "+1604555", 4, "America/Vancouver"),
    ("GB", "EMEA", "London", "+442079460", 3, "Europe/London"),
    ("DE", "EMEA", "Berlin", "+4930", 8, "Europe/Berlin"),
    ("DE", "EMEA", "Munich", "+4989", 8, "Europe/Berlin"),
    ("FR", "EMEA", "Paris", "+331", 8, "Europe/Paris"),
    ("NL", "EMEA", "Amsterdam", "+3120", 7, "Europe/Amsterdam"),
    ("SE", "EMEA", "Stockholm", "+468", 7, "Europe/Stockholm"),
    ("ES", "EMEA", "Madrid", "+3491", 7, "Europe/Madrid"),
    ("AU", "APAC", "Sydney", "+612", 8, "Australia/Sydney"),
    ("SG", "APAC", "Singapore", "+656", 7, "Asia/Singapore"),
]
# Relative weights for LOCATIONS (North America dominates, as for a US-based team).
LOCATION_WEIGHTS = [10, 8, 4, 5, 6, 6, 9, 6, 4, 4, 3, 5, 3, 2, 3, 2, 2, 2, 3, 2]

FIRST_NAMES = _split("""
    Adaeze Ahmed Aiko Alejandro Amara Anders Anika Arjun Astrid Beatriz Bilal Camille Carlos Chen
    Chiara Daniel Dmitri Elena Emeka Emily Fatima Felix Freya Gabriel Grace Hana Hannah Hiroshi
    Ibrahim Ingrid Isabel Jamal Javier Jin Joanna Jonas Julia Kai Kavya Keanu Kenji Laila Lars Leah
    Liam Lucia Magnus Maya Mei Mira Nadia Naveen Nia Noah Olga Omar Oskar Paulo Rafael Rania Rohan
    Ruth Sakura Samuel Sara Sean Sofia Tariq Thabo Tomas Valentina Victor Wei Yara Yusuf Zainab Zoe
    Ethan Olivia Marcus
""")

LAST_NAMES = _split("""
    Abara Adeyemi Almeida Andersson Bauer Bergstrom Brennan Castillo Chowdhury Costa Dahl Delgado
    Dubois Eriksen Fernandes Fischer Fitzgerald Garcia Gupta Haddad Hansen Hartmann Hoffman Ibrahim
    Ito Jansen Johansson Kapoor Kaur Keller Kim Kowalski Lambert Larsen Lindqvist Lopez Mahmoud
    Marchetti Mendes Moreau Mwangi Nakamura Nguyen Novak Nowak Obi Okafor Olsen Ortega Park Patel
    Petrov Quinn Reyes Rossi Sato Schmidt Silva Singh Sorensen Suzuki Tanaka Torres Tran Vasquez
    Vogel Walsh Weber Wojcik Yamamoto Yilmaz Zhang Zimmermann Carter Hughes Murphy
""")

# (title, seniority weight for being on a deal as decision maker / economic buyer)
TITLES = [
    "CEO",
    "COO",
    "CFO",
    "CTO",
    "CIO",
    "CISO",
    "VP Sales",
    "VP Operations",
    "VP Engineering",
    "VP Finance",
    "Head of Operations",
    "Head of IT",
    "Head of Procurement",
    "Director of Logistics",
    "Director of Engineering",
    "IT Manager",
    "Operations Manager",
    "Procurement Manager",
    "Fleet Manager",
    "Sales Operations Manager",
    "Solutions Architect",
    "Security Engineer",
    "Data Analyst",
    "Finance Manager",
    "Office Manager",
]
EXECUTIVE_TITLES = {"CEO", "COO", "CFO", "CTO", "CIO", "VP Sales", "VP Operations", "VP Finance"}
TECHNICAL_TITLES = {
    "CTO",
    "CIO",
    "CISO",
    "VP Engineering",
    "Head of IT",
    "Director of Engineering",
    "IT Manager",
    "Solutions Architect",
    "Security Engineer",
}

# source -> weight; a company's source is how it first came in.
SOURCES = {"web": 25, "inbound": 20, "outbound": 20, "referral": 12, "event": 13, "partner": 10}
# Win-rate multipliers: referrals and partners close best, cold outbound worst.
SOURCE_WIN = {"referral": 1.5, "partner": 1.3, "inbound": 1.1, "event": 0.9, "web": 0.85, "outbound": 0.6}

DEAL_THEMES = [
    "Platform Rollout",
    "Fleet Telematics",
    "Pilot",
    "Annual Renewal",
    "Seat Expansion",
    "Analytics Add-on",
    "EMEA Expansion",
    "Security Upgrade",
    "Route Optimization",
    "Warehouse Visibility",
    "Enterprise Agreement",
    "API Integration",
    "Onboarding Package",
    "Support Upgrade",
    "Multi-site Deployment",
    "Dispatch Automation",
]

LOST_REASONS = {
    "price": 24,
    "timing": 18,
    "competitor": 22,
    "no decision": 20,
    "budget": 8,
    "missing feature": 6,
    "champion left": 2,
}
COMPETITORS = ["Cartwell", "Stackhouse", "Trackrite", "Nordvane", "an in-house build"]

# next step per open stage (by position 0-4)
NEXT_STEPS = [
    [
        "Book discovery call with {first}",
        "Qualify budget and timeline with {first}",
        "Find the economic buyer",
    ],
    [
        "Map stakeholders with {first}",
        "Confirm pain points and success criteria",
        "Schedule demo for the ops team",
    ],
    [
        "Run tailored demo for {first}'s team",
        "Send demo recording and follow-up deck",
        "Set up trial workspace",
    ],
    [
        "Send proposal and pricing to {first}",
        "Review proposal with {first} and finance",
        "Answer security questionnaire",
    ],
    ["Redline MSA with legal", "Agree final pricing with {first}", "Get signature from procurement"],
]

# Activity subject templates per stage position (0-4 open stages, 5 after close),
# and per type. {first} contact first name, {co} short company name, {theme} deal theme.
SUBJECTS = {
    "call": [
        ["Intro call with {first}", "Qualification call: {co}", "Follow-up call with {first}"],
        ["Discovery call with {first}", "Call: {co} current process", "Call with {first} re: requirements"],
        ["Demo debrief with {first}", "Call: demo follow-up", "Call with {first} about trial results"],
        ["Pricing call with {first}", "Proposal walkthrough with {first}", "Call: {theme} scope"],
        ["Negotiation call with {first}", "Call: contract terms", "Call with {first} and procurement"],
        ["Check-in call with {first}", "Post-decision call with {first}"],
    ],
    "meeting": [
        ["Intro meeting at {co}", "Coffee with {first}"],
        ["Discovery workshop with {co}", "Requirements session with {first}"],
        ["Product demo for {co}", "Technical deep dive with {first}"],
        ["Proposal review with {co}", "Business case review with {first}"],
        ["Contract review with {co}", "Executive alignment: {co}"],
        ["Kickoff meeting with {co}", "Quarterly review with {first}"],
    ],
    "email": [
        ["Intro: {co} x Agent CRM", "Following up on your inquiry", "Quick question, {first}"],
        ["Recap of our discovery call", "Questions before the demo", "Re: requirements for {theme}"],
        ["Demo recording and slides", "Re: trial access", "Re: integration questions"],
        ["Proposal: {theme}", "Re: pricing options", "Security documentation"],
        ["Re: MSA redlines", "Re: final pricing", "Order form for signature"],
        ["Thank you, {first}", "Re: next steps"],
    ],
    "note": [
        ["Qualification notes", "First impressions of {co}"],
        ["Discovery notes", "Pain points at {co}"],
        ["Demo notes", "Trial feedback"],
        ["Proposal notes", "Pricing discussion notes"],
        ["Negotiation notes", "Legal/procurement notes"],
        ["Close notes", "Account notes"],
    ],
}

# Short bodies per activity type; the same placeholders as SUBJECTS plus {amount} and {step}.
BODIES = {
    "call": [
        "Spoke with {first} for {minutes} min. They run {theme} on spreadsheets today. Next: {step}.",
        "{first} confirmed the team is evaluating two vendors. Budget around {amount}. Next: {step}.",
        "Left a voicemail for {first}; followed up by email.",
        "{first} asked about onboarding time and support hours. Agreed to {step_lower}.",
        "Good call with {first}: timeline holds, procurement wants a one-pager. Next: {step}.",
    ],
    "meeting": [
        "Met {first} and two people from their ops team. Walked through {theme}. Next: {step}.",
        "Workshop with {co}: mapped current process, three integration points. Next: {step}.",
        "{first} brought IT; questions on SSO and data residency. Sent follow-ups the same day.",
        "Reviewed the business case with {first}; they see payback within a year at {amount}.",
    ],
    "email": [
        "Hi {first},\n\nThanks for your time today. As promised, a short recap and the next step: {step}.\n\nBest,",
        "Hi {first},\n\nAttaching the material we discussed for {theme}. Happy to walk through it.\n\nBest,",
        "Hi,\n\nThanks, we reviewed internally. Can you send pricing for {amount} and the support options?\n\n{first}",
        "Hi {first},\n\nJust checking in on the proposal. Does the timeline still work on your side?\n\nBest,",
    ],
    "note": [
        "{first} is the main contact; reports to the COO. Budget approved for this year. Risk: {risk}.",
        "Competition: {competitor}. {first} prefers our reporting. Risk: {risk}.",
        "{co} wants to start with a pilot. Decision expected by the close date. Next: {step}.",
    ],
}

RISKS = [
    "no economic buyer identified yet",
    "procurement cycle may push past quarter end",
    "competing priority (ERP migration)",
    "champion is new in the role",
    "security review not started",
    "budget needs CFO sign-off",
]

TASK_TITLES = [
    "Follow up with {first} on proposal",
    "Send case study to {first}",
    "Schedule demo with {co}",
    "Prepare pricing options for {co}",
    "Confirm decision timeline with {first}",
    "Send MSA redlines to {co} legal",
    "Book technical deep dive with {co}",
    "Check in with {first} after trial",
]

NOTE_BODIES = [
    "{co}: {first} prefers email over calls, best reached mornings.",
    "Org chart at {co}: {first} reports to the COO; IT sign-off needed for anything over 50 seats.",
    "{co} renewal with {competitor} ends next quarter; good timing for {theme}.",
    "{first} mentioned a reorg at {co}; keep an eye on who owns the budget.",
    "Pricing sensitivity at {co}: asked twice about multi-year discounts.",
    "Reference call offered to {first} with an existing customer in the same industry.",
]

# --- Borealis Logistics: the account Priya briefs herself on in STORIES.md -----------------
# Each entry happened `days` before today at `time` in Priya's zone; `who` are contact keys.
BOREALIS_TIMELINE = [
    {
        "days": 77, "time": (9, 30), "type": "email", "who": ["ines"], "email": "borealis-intro",
        "subject": "Intro: Borealis x Agent CRM",
        "body": "Hi Ines,\n\nThanks for taking my call. As promised, a short overview of how operations "
        "teams use Agent CRM to keep dispatch, fleet and customer commitments in one place. Would Thursday "
        "work for a 30-minute discovery call?\n\nBest,\nPriya",
    },
    {
        "days": 71, "time": (10, 0), "type": "call", "who": ["ines"], "minutes": 35,
        "subject": "Discovery call with Ines",
        "body": "Ines runs operations for 420 trucks across six depots. Dispatch lives in spreadsheets "
        "plus a legacy telematics box nobody trusts. Pain: no single view of customer commitments vs. fleet "
        "capacity. Budget about $40,000 this fiscal year; the CFO signs off above $50,000. Next: demo for "
        "her depot leads and Marco (VP Engineering).",
    },
    {
        "days": 52, "time": (11, 0), "type": "meeting", "who": ["ines", "marco"], "minutes": 60,
        "subject": "Product demo for Borealis",
        "body": "Demoed pipeline, inbox logging and the fleet dashboard to Ines, Marco and two depot leads. "
        "Marco asked about SSO (Okta), API rate limits and data residency. Ines wants a pilot at two "
        "depots before a full rollout.",
    },
    {
        "days": 38, "time": (9, 0), "type": "meeting", "who": ["marco"], "minutes": 45,
        "subject": "Technical deep dive with Marco",
        "body": "Marco and his lead engineer reviewed the API and webhooks. Open items: SAML SSO setup, rate "
        "limits in writing, and a security questionnaire they will send later. Marco is positive but wants "
        "the telematics integration scoped before they sign.",
    },
    {
        "days": 30, "time": (15, 0), "type": "email", "who": ["ines", "marco"], "email": "borealis-proposal",
        "subject": "Proposal: Fleet Telematics",
        "body": "Hi Ines,\n\nAttached is our proposal for the Fleet Telematics pilot and rollout: 40 seats, "
        "onboarding and premium support, $48,000 per year. Quote Q-1001 is valid for 30 days.\n\n"
        "Best,\nPriya",
    },
    {
        "days": 20, "time": (8, 40), "type": "email", "who": ["ines"], "inbound": True,
        "email": "borealis-proposal-re", "reply_to": "borealis-proposal",
        "subject": "Re: Proposal: Fleet Telematics",
        "body": "Hi Priya,\n\nThanks for the proposal. We reviewed it internally: we would like to run the "
        "pilot in January rather than December, once peak season is over. Marco also wants to understand "
        "the telematics module before we sign.\n\nInes",
    },
    {
        "days": 9, "time": (13, 30), "type": "call", "who": ["ines"], "minutes": 25,
        "subject": "Pricing call with Ines",
        "body": "Ines pushed on price for the full rollout and asked what the telematics module would add. "
        "I promised to send the pilot plan by Friday and to loop in our security team for Marco's "
        "questionnaire. Close date is end of January to fit the pilot.",
    },
    {
        "days": 6, "time": (10, 0), "type": "meeting", "who": ["ines", "marco"], "minutes": 45,
        "subject": "Contract review with Borealis",
        "body": "Walked through the order form and pilot scope (two depots, January start). Ines is "
        "championing it internally; Marco needs SSO and API limits in the contract. Still no contact with "
        "the CFO, who signs above $50,000. Agreed: revised quote with telematics module pricing after our "
        "next call.",
    },
]  # fmt: skip

BOREALIS_NOTE = (
    "Ines is the champion; Marco owns the technical evaluation (SSO, API limits). Risk: no economic buyer "
    "engaged - the CFO signs anything over $50k and we have not met them. Promised: pilot plan (sent), "
    "security overview for Marco."
)

# (title, due days ago or None for "this Thursday", created days ago, done, contact key)
BOREALIS_TASKS = [
    ("Send pilot plan to Ines", 5, 9, True, "ines"),
    ("Book security review with Marco", 2, 6, False, "marco"),
    ("Send revised quote to Borealis", None, 6, False, "ines"),
]
