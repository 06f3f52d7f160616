package generate

// Name lists are common German given and family names (plus a few names of families who came to
// Germany, as the real directory has them), written by hand for this generator. Umlauts, ß and a
// Turkish dotless ı are deliberate: search normalisation and the Matrix localpart transliteration must
// cope with them.
var (
	familyNames = []string{
		"Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
		"Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann",
		"Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner", "Schmitz", "Krause", "Meier",
		"Lehmann", "Schmid", "Schulze", "Maier", "Köhler", "Herrmann", "König", "Walter", "Mayer", "Huber",
		"Kaiser", "Fuchs", "Peters", "Lang", "Scholz", "Möller", "Weiß", "Jung", "Hahn", "Schubert",
		"Vogel", "Friedrich", "Keller", "Günther", "Frank", "Berger", "Winkler", "Roth", "Beck", "Lorenz",
		"Baumann", "Franke", "Albrecht", "Schuster", "Simon", "Ludwig", "Böhm", "Winter", "Kraus", "Martin",
		"Schumacher", "Krämer", "Vogt", "Stein", "Jäger", "Otto", "Sommer", "Groß", "Seidel", "Heinrich",
		"Brandt", "Haas", "Schreiber", "Graf", "Schulte", "Dietrich", "Ziegler", "Kuhn", "Kühn", "Pohl",
		"Engel", "Horn", "Busch", "Bergmann", "Thomas", "Voigt", "Sauer", "Arnold", "Wolff", "Pfeiffer",
		"Yılmaz", "Kaya", "Öztürk", "Nowak", "Kowalski", "Nguyen", "Popescu", "Petrović", "Hansen", "Jansen",
	}
	maleGiven = []string{
		"Jürgen", "Björn", "Jörg", "Stefan", "Michael", "Thomas", "Andreas", "Peter", "Christian", "Frank",
		"Markus", "Martin", "Klaus", "Wolfgang", "Uwe", "Matthias", "Alexander", "Daniel", "Sebastian", "Tobias",
		"Jan", "Lukas", "Felix", "Maximilian", "Jonas", "Florian", "Philipp", "Tim", "Niklas", "Dirk",
		"Ralf", "Holger", "Bernd", "Günter", "Hans", "Dieter", "Karl-Heinz", "Sören", "Torsten", "Henrik",
		"Moritz", "Leon", "Paul", "Ole", "Malte", "Kai", "Jens", "Sven", "Timo", "Fabian",
		"Benedikt", "Konstantin", "Mehmet", "Ahmet", "Piotr", "Nikolai", "Ömer", "Lars", "Volker", "Rüdiger",
	}
	femaleGiven = []string{
		"Anna", "Maria", "Ursula", "Sabine", "Petra", "Andrea", "Claudia", "Susanne", "Monika", "Birgit",
		"Katrin", "Julia", "Sarah", "Laura", "Lena", "Lea", "Hannah", "Sophie", "Marie", "Johanna",
		"Katharina", "Christina", "Stefanie", "Nicole", "Anja", "Silke", "Heike", "Kerstin", "Jana", "Nina",
		"Miriam", "Charlotte", "Emilia", "Clara", "Franziska", "Dörte", "Bärbel", "Jutta", "Gisela", "Renate",
		"Ingrid", "Helga", "Anke", "Antje", "Elif", "Ayşe", "Agnieszka", "Svenja", "Wiebke", "Frauke",
		"Maren", "Ann-Kathrin", "Lisa", "Carolin", "Theresa", "Gülay", "Jördis", "Hülya", "Małgorzata", "Zoë",
	}
	// pharmacyNames are the traditional German pharmacy names ("Löwen-Apotheke").
	pharmacyNames = []string{
		"Rathaus", "Markt", "Stern", "Linden", "Adler", "Löwen", "Bahnhof", "Park", "Sonnen", "Hirsch",
		"Einhorn", "Engel", "Schloss", "Stadt", "Kloster", "Brunnen", "Rosen", "Hof", "Kronen", "Mohren",
		"Glocken", "Bären", "Schwanen", "Marien", "Apostel", "Central", "Neue", "Alte", "Dom", "Berg",
	}
	saints = []string{"Marien", "Josef", "Elisabeth", "Vincenz", "Antonius", "Franziskus", "Johannes", "Martin", "Hedwig", "Georg"}
)

// Homeserver domains the generated MXIDs live on: a handful, as a real directory is dominated by a few
// TI-M providers. Pharmacies, hospitals and care have their own provider flavour. All invented.
var (
	practiceServers = []string{"tim.praxis-1.de", "tim.praxis-2.de", "tim.praxis-3.de", "tim.praxis-4.de", "tim.praxis-5.de"}
	pharmacyServer  = "tim.apotheken-netz.de"
	hospitalServer  = "tim.kliniken-verbund.de"
	careServer      = "tim.pflege-messenger.de"
	payerServer     = "tim.kassen-messenger.de"
)

// translit maps the non-ASCII letters of the name lists to ASCII for Matrix localparts (which allow only
// a-z, 0-9 and ._=-/).
var translit = map[rune]string{
	'ä': "ae", 'ö': "oe", 'ü': "ue", 'ß': "ss", 'Ä': "ae", 'Ö': "oe", 'Ü': "ue",
	'ı': "i", 'ş': "s", 'ğ': "g", 'ç': "c", 'ć': "c", 'ł': "l", 'ë': "e", 'é': "e", 'è': "e",
}
