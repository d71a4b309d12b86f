"""One APIRouter per resource; handlers only parse, authorise and delegate."""
