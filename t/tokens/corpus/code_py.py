import asyncio, json
from dataclasses import dataclass, field
from typing import Optional

@dataclass
class Request:
    model: str
    messages: list[dict] = field(default_factory=list)
    max_tokens: Optional[int] = None

    def to_json(self) -> str:
        return json.dumps({"model": self.model, "messages": self.messages}, indent=2)


async def main() -> None:
    req = Request(model="gpt-4o", messages=[{"role": "user", "content": "Hi!"}])
    print(req.to_json())
    await asyncio.sleep(0.1)
    x = [i ** 2 for i in range(10) if i % 2 == 0]  # squares
    assert x == [0, 4, 16, 36, 64], f"unexpected {x!r}"

if __name__ == "__main__":
    asyncio.run(main())
