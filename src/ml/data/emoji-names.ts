// Generated file: do not edit by hand. See src/ml/data/README.md for how it was made.
//
// English text-to-speech names of single-code-point emoji, from the Unicode CLDR annotations
// (Debian package unicode-cldr-core, /usr/share/unicode/cldr/common/annotations/en.xml,
// Copyright © 1991-2022 Unicode, Inc., SPDX-License-Identifier: Unicode-DFS-2016). These are the same
// CLDR short names the reference vaderSentiment emoji lexicon uses, so emoji are scored by
// replacing them with their description, as the reference does.
//
// Format: one entry per line, "<code point in hex>\t<name>".
export const emojiNamesTsv = `1f004	mahjong red dragon
1f0cf	joker
1f170	A button (blood type)
1f171	B button (blood type)
1f17e	O button (blood type)
1f17f	P button
1f18e	AB button (blood type)
1f191	CL button
1f192	COOL button
1f193	FREE button
1f194	ID button
1f195	NEW button
1f196	NG button
1f197	OK button
1f198	SOS button
1f199	UP! button
1f19a	VS button
1f201	Japanese “here” button
1f202	Japanese “service charge” button
1f21a	Japanese “free of charge” button
1f22f	Japanese “reserved” button
1f232	Japanese “prohibited” button
1f233	Japanese “vacancy” button
1f234	Japanese “passing grade” button
1f235	Japanese “no vacancy” button
1f236	Japanese “not free of charge” button
1f237	Japanese “monthly amount” button
1f238	Japanese “application” button
1f239	Japanese “discount” button
1f23a	Japanese “open for business” button
1f250	Japanese “bargain” button
1f251	Japanese “acceptable” button
1f300	cyclone
1f301	foggy
1f302	closed umbrella
1f303	night with stars
1f304	sunrise over mountains
1f305	sunrise
1f306	cityscape at dusk
1f307	sunset
1f308	rainbow
1f309	bridge at night
1f30a	water wave
1f30b	volcano
1f30c	milky way
1f30d	globe showing Europe-Africa
1f30e	globe showing Americas
1f30f	globe showing Asia-Australia
1f310	globe with meridians
1f311	new moon
1f312	waxing crescent moon
1f313	first quarter moon
1f314	waxing gibbous moon
1f315	full moon
1f316	waning gibbous moon
1f317	last quarter moon
1f318	waning crescent moon
1f319	crescent moon
1f31a	new moon face
1f31b	first quarter moon face
1f31c	last quarter moon face
1f31d	full moon face
1f31e	sun with face
1f31f	glowing star
1f320	shooting star
1f321	thermometer
1f324	sun behind small cloud
1f325	sun behind large cloud
1f326	sun behind rain cloud
1f327	cloud with rain
1f328	cloud with snow
1f329	cloud with lightning
1f32a	tornado
1f32b	fog
1f32c	wind face
1f32d	hot dog
1f32e	taco
1f32f	burrito
1f330	chestnut
1f331	seedling
1f332	evergreen tree
1f333	deciduous tree
1f334	palm tree
1f335	cactus
1f336	hot pepper
1f337	tulip
1f338	cherry blossom
1f339	rose
1f33a	hibiscus
1f33b	sunflower
1f33c	blossom
1f33d	ear of corn
1f33e	sheaf of rice
1f33f	herb
1f340	four leaf clover
1f341	maple leaf
1f342	fallen leaf
1f343	leaf fluttering in wind
1f344	mushroom
1f345	tomato
1f346	eggplant
1f347	grapes
1f348	melon
1f349	watermelon
1f34a	tangerine
1f34b	lemon
1f34c	banana
1f34d	pineapple
1f34e	red apple
1f34f	green apple
1f350	pear
1f351	peach
1f352	cherries
1f353	strawberry
1f354	hamburger
1f355	pizza
1f356	meat on bone
1f357	poultry leg
1f358	rice cracker
1f359	rice ball
1f35a	cooked rice
1f35b	curry rice
1f35c	steaming bowl
1f35d	spaghetti
1f35e	bread
1f35f	french fries
1f360	roasted sweet potato
1f361	dango
1f362	oden
1f363	sushi
1f364	fried shrimp
1f365	fish cake with swirl
1f366	soft ice cream
1f367	shaved ice
1f368	ice cream
1f369	doughnut
1f36a	cookie
1f36b	chocolate bar
1f36c	candy
1f36d	lollipop
1f36e	custard
1f36f	honey pot
1f370	shortcake
1f371	bento box
1f372	pot of food
1f373	cooking
1f374	fork and knife
1f375	teacup without handle
1f376	sake
1f377	wine glass
1f378	cocktail glass
1f379	tropical drink
1f37a	beer mug
1f37b	clinking beer mugs
1f37c	baby bottle
1f37d	fork and knife with plate
1f37e	bottle with popping cork
1f37f	popcorn
1f380	ribbon
1f381	wrapped gift
1f382	birthday cake
1f383	jack-o-lantern
1f384	Christmas tree
1f385	Santa Claus
1f386	fireworks
1f387	sparkler
1f388	balloon
1f389	party popper
1f38a	confetti ball
1f38b	tanabata tree
1f38c	crossed flags
1f38d	pine decoration
1f38e	Japanese dolls
1f38f	carp streamer
1f390	wind chime
1f391	moon viewing ceremony
1f392	backpack
1f393	graduation cap
1f396	military medal
1f397	reminder ribbon
1f399	studio microphone
1f39a	level slider
1f39b	control knobs
1f39e	film frames
1f39f	admission tickets
1f3a0	carousel horse
1f3a1	ferris wheel
1f3a2	roller coaster
1f3a3	fishing pole
1f3a4	microphone
1f3a5	movie camera
1f3a6	cinema
1f3a7	headphone
1f3a8	artist palette
1f3a9	top hat
1f3aa	circus tent
1f3ab	ticket
1f3ac	clapper board
1f3ad	performing arts
1f3ae	video game
1f3af	bullseye
1f3b0	slot machine
1f3b1	pool 8 ball
1f3b2	game die
1f3b3	bowling
1f3b4	flower playing cards
1f3b5	musical note
1f3b6	musical notes
1f3b7	saxophone
1f3b8	guitar
1f3b9	musical keyboard
1f3ba	trumpet
1f3bb	violin
1f3bc	musical score
1f3bd	running shirt
1f3be	tennis
1f3bf	skis
1f3c0	basketball
1f3c1	chequered flag
1f3c2	snowboarder
1f3c3	person running
1f3c4	person surfing
1f3c5	sports medal
1f3c6	trophy
1f3c7	horse racing
1f3c8	american football
1f3c9	rugby football
1f3ca	person swimming
1f3cb	person lifting weights
1f3cc	person golfing
1f3cd	motorcycle
1f3ce	racing car
1f3cf	cricket game
1f3d0	volleyball
1f3d1	field hockey
1f3d2	ice hockey
1f3d3	ping pong
1f3d4	snow-capped mountain
1f3d5	camping
1f3d6	beach with umbrella
1f3d7	building construction
1f3d8	houses
1f3d9	cityscape
1f3da	derelict house
1f3db	classical building
1f3dc	desert
1f3dd	desert island
1f3de	national park
1f3df	stadium
1f3e0	house
1f3e1	house with garden
1f3e2	office building
1f3e3	Japanese post office
1f3e4	post office
1f3e5	hospital
1f3e6	bank
1f3e7	ATM sign
1f3e8	hotel
1f3e9	love hotel
1f3ea	convenience store
1f3eb	school
1f3ec	department store
1f3ed	factory
1f3ee	red paper lantern
1f3ef	Japanese castle
1f3f0	castle
1f3f3	white flag
1f3f4	black flag
1f3f5	rosette
1f3f7	label
1f3f8	badminton
1f3f9	bow and arrow
1f3fa	amphora
1f3fb	light skin tone
1f3fc	medium-light skin tone
1f3fd	medium skin tone
1f3fe	medium-dark skin tone
1f3ff	dark skin tone
1f400	rat
1f401	mouse
1f402	ox
1f403	water buffalo
1f404	cow
1f405	tiger
1f406	leopard
1f407	rabbit
1f408	cat
1f409	dragon
1f40a	crocodile
1f40b	whale
1f40c	snail
1f40d	snake
1f40e	horse
1f40f	ram
1f410	goat
1f411	ewe
1f412	monkey
1f413	rooster
1f414	chicken
1f415	dog
1f416	pig
1f417	boar
1f418	elephant
1f419	octopus
1f41a	spiral shell
1f41b	bug
1f41c	ant
1f41d	honeybee
1f41e	lady beetle
1f41f	fish
1f420	tropical fish
1f421	blowfish
1f422	turtle
1f423	hatching chick
1f424	baby chick
1f425	front-facing baby chick
1f426	bird
1f427	penguin
1f428	koala
1f429	poodle
1f42a	camel
1f42b	two-hump camel
1f42c	dolphin
1f42d	mouse face
1f42e	cow face
1f42f	tiger face
1f430	rabbit face
1f431	cat face
1f432	dragon face
1f433	spouting whale
1f434	horse face
1f435	monkey face
1f436	dog face
1f437	pig face
1f438	frog
1f439	hamster
1f43a	wolf
1f43b	bear
1f43c	panda
1f43d	pig nose
1f43e	paw prints
1f43f	chipmunk
1f440	eyes
1f441	eye
1f442	ear
1f443	nose
1f444	mouth
1f445	tongue
1f446	backhand index pointing up
1f447	backhand index pointing down
1f448	backhand index pointing left
1f449	backhand index pointing right
1f44a	oncoming fist
1f44b	waving hand
1f44c	OK hand
1f44d	thumbs up
1f44e	thumbs down
1f44f	clapping hands
1f450	open hands
1f451	crown
1f452	woman’s hat
1f453	glasses
1f454	necktie
1f455	t-shirt
1f456	jeans
1f457	dress
1f458	kimono
1f459	bikini
1f45a	woman’s clothes
1f45b	purse
1f45c	handbag
1f45d	clutch bag
1f45e	man’s shoe
1f45f	running shoe
1f460	high-heeled shoe
1f461	woman’s sandal
1f462	woman’s boot
1f463	footprints
1f464	bust in silhouette
1f465	busts in silhouette
1f466	boy
1f467	girl
1f468	man
1f469	woman
1f46a	family
1f46b	woman and man holding hands
1f46c	men holding hands
1f46d	women holding hands
1f46e	police officer
1f46f	people with bunny ears
1f470	person with veil
1f471	person: blond hair
1f472	person with skullcap
1f473	person wearing turban
1f474	old man
1f475	old woman
1f476	baby
1f477	construction worker
1f478	princess
1f479	ogre
1f47a	goblin
1f47b	ghost
1f47c	baby angel
1f47d	alien
1f47e	alien monster
1f47f	angry face with horns
1f480	skull
1f481	person tipping hand
1f482	guard
1f483	woman dancing
1f484	lipstick
1f485	nail polish
1f486	person getting massage
1f487	person getting haircut
1f488	barber pole
1f489	syringe
1f48a	pill
1f48b	kiss mark
1f48c	love letter
1f48d	ring
1f48e	gem stone
1f48f	kiss
1f490	bouquet
1f491	couple with heart
1f492	wedding
1f493	beating heart
1f494	broken heart
1f495	two hearts
1f496	sparkling heart
1f497	growing heart
1f498	heart with arrow
1f499	blue heart
1f49a	green heart
1f49b	yellow heart
1f49c	purple heart
1f49d	heart with ribbon
1f49e	revolving hearts
1f49f	heart decoration
1f4a0	diamond with a dot
1f4a1	light bulb
1f4a2	anger symbol
1f4a3	bomb
1f4a4	ZZZ
1f4a5	collision
1f4a6	sweat droplets
1f4a7	droplet
1f4a8	dashing away
1f4a9	pile of poo
1f4aa	flexed biceps
1f4ab	dizzy
1f4ac	speech balloon
1f4ad	thought balloon
1f4ae	white flower
1f4af	hundred points
1f4b0	money bag
1f4b1	currency exchange
1f4b2	heavy dollar sign
1f4b3	credit card
1f4b4	yen banknote
1f4b5	dollar banknote
1f4b6	euro banknote
1f4b7	pound banknote
1f4b8	money with wings
1f4b9	chart increasing with yen
1f4ba	seat
1f4bb	laptop
1f4bc	briefcase
1f4bd	computer disk
1f4be	floppy disk
1f4bf	optical disk
1f4c0	dvd
1f4c1	file folder
1f4c2	open file folder
1f4c3	page with curl
1f4c4	page facing up
1f4c5	calendar
1f4c6	tear-off calendar
1f4c7	card index
1f4c8	chart increasing
1f4c9	chart decreasing
1f4ca	bar chart
1f4cb	clipboard
1f4cc	pushpin
1f4cd	round pushpin
1f4ce	paperclip
1f4cf	straight ruler
1f4d0	triangular ruler
1f4d1	bookmark tabs
1f4d2	ledger
1f4d3	notebook
1f4d4	notebook with decorative cover
1f4d5	closed book
1f4d6	open book
1f4d7	green book
1f4d8	blue book
1f4d9	orange book
1f4da	books
1f4db	name badge
1f4dc	scroll
1f4dd	memo
1f4de	telephone receiver
1f4df	pager
1f4e0	fax machine
1f4e1	satellite antenna
1f4e2	loudspeaker
1f4e3	megaphone
1f4e4	outbox tray
1f4e5	inbox tray
1f4e6	package
1f4e7	e-mail
1f4e8	incoming envelope
1f4e9	envelope with arrow
1f4ea	closed mailbox with lowered flag
1f4eb	closed mailbox with raised flag
1f4ec	open mailbox with raised flag
1f4ed	open mailbox with lowered flag
1f4ee	postbox
1f4ef	postal horn
1f4f0	newspaper
1f4f1	mobile phone
1f4f2	mobile phone with arrow
1f4f3	vibration mode
1f4f4	mobile phone off
1f4f5	no mobile phones
1f4f6	antenna bars
1f4f7	camera
1f4f8	camera with flash
1f4f9	video camera
1f4fa	television
1f4fb	radio
1f4fc	videocassette
1f4fd	film projector
1f4ff	prayer beads
1f500	shuffle tracks button
1f501	repeat button
1f502	repeat single button
1f503	clockwise vertical arrows
1f504	counterclockwise arrows button
1f505	dim button
1f506	bright button
1f507	muted speaker
1f508	speaker low volume
1f509	speaker medium volume
1f50a	speaker high volume
1f50b	battery
1f50c	electric plug
1f50d	magnifying glass tilted left
1f50e	magnifying glass tilted right
1f50f	locked with pen
1f510	locked with key
1f511	key
1f512	locked
1f513	unlocked
1f514	bell
1f515	bell with slash
1f516	bookmark
1f517	link
1f518	radio button
1f519	BACK arrow
1f51a	END arrow
1f51b	ON! arrow
1f51c	SOON arrow
1f51d	TOP arrow
1f51e	no one under eighteen
1f520	input latin uppercase
1f521	input latin lowercase
1f522	input numbers
1f523	input symbols
1f524	input latin letters
1f525	fire
1f526	flashlight
1f527	wrench
1f528	hammer
1f529	nut and bolt
1f52a	kitchen knife
1f52b	water pistol
1f52c	microscope
1f52d	telescope
1f52e	crystal ball
1f52f	dotted six-pointed star
1f530	Japanese symbol for beginner
1f531	trident emblem
1f532	black square button
1f533	white square button
1f534	red circle
1f535	blue circle
1f536	large orange diamond
1f537	large blue diamond
1f538	small orange diamond
1f539	small blue diamond
1f53a	red triangle pointed up
1f53b	red triangle pointed down
1f53c	upwards button
1f53d	downwards button
1f549	om
1f54a	dove
1f54b	kaaba
1f54c	mosque
1f54d	synagogue
1f54e	menorah
1f550	one o’clock
1f551	two o’clock
1f552	three o’clock
1f553	four o’clock
1f554	five o’clock
1f555	six o’clock
1f556	seven o’clock
1f557	eight o’clock
1f558	nine o’clock
1f559	ten o’clock
1f55a	eleven o’clock
1f55b	twelve o’clock
1f55c	one-thirty
1f55d	two-thirty
1f55e	three-thirty
1f55f	four-thirty
1f560	five-thirty
1f561	six-thirty
1f562	seven-thirty
1f563	eight-thirty
1f564	nine-thirty
1f565	ten-thirty
1f566	eleven-thirty
1f567	twelve-thirty
1f56f	candle
1f570	mantelpiece clock
1f573	hole
1f574	person in suit levitating
1f575	detective
1f576	sunglasses
1f577	spider
1f578	spider web
1f579	joystick
1f57a	man dancing
1f587	linked paperclips
1f58a	pen
1f58b	fountain pen
1f58c	paintbrush
1f58d	crayon
1f590	hand with fingers splayed
1f595	middle finger
1f596	vulcan salute
1f5a4	black heart
1f5a5	desktop computer
1f5a8	printer
1f5b1	computer mouse
1f5b2	trackball
1f5bc	framed picture
1f5c2	card index dividers
1f5c3	card file box
1f5c4	file cabinet
1f5d1	wastebasket
1f5d2	spiral notepad
1f5d3	spiral calendar
1f5dc	clamp
1f5dd	old key
1f5de	rolled-up newspaper
1f5e1	dagger
1f5e3	speaking head
1f5e8	left speech bubble
1f5ef	right anger bubble
1f5f3	ballot box with ballot
1f5fa	world map
1f5fb	mount fuji
1f5fc	Tokyo tower
1f5fd	Statue of Liberty
1f5fe	map of Japan
1f5ff	moai
1f600	grinning face
1f601	beaming face with smiling eyes
1f602	face with tears of joy
1f603	grinning face with big eyes
1f604	grinning face with smiling eyes
1f605	grinning face with sweat
1f606	grinning squinting face
1f607	smiling face with halo
1f608	smiling face with horns
1f609	winking face
1f60a	smiling face with smiling eyes
1f60b	face savoring food
1f60c	relieved face
1f60d	smiling face with heart-eyes
1f60e	smiling face with sunglasses
1f60f	smirking face
1f610	neutral face
1f611	expressionless face
1f612	unamused face
1f613	downcast face with sweat
1f614	pensive face
1f615	confused face
1f616	confounded face
1f617	kissing face
1f618	face blowing a kiss
1f619	kissing face with smiling eyes
1f61a	kissing face with closed eyes
1f61b	face with tongue
1f61c	winking face with tongue
1f61d	squinting face with tongue
1f61e	disappointed face
1f61f	worried face
1f620	angry face
1f621	enraged face
1f622	crying face
1f623	persevering face
1f624	face with steam from nose
1f625	sad but relieved face
1f626	frowning face with open mouth
1f627	anguished face
1f628	fearful face
1f629	weary face
1f62a	sleepy face
1f62b	tired face
1f62c	grimacing face
1f62d	loudly crying face
1f62e	face with open mouth
1f62f	hushed face
1f630	anxious face with sweat
1f631	face screaming in fear
1f632	astonished face
1f633	flushed face
1f634	sleeping face
1f635	face with crossed-out eyes
1f636	face without mouth
1f637	face with medical mask
1f638	grinning cat with smiling eyes
1f639	cat with tears of joy
1f63a	grinning cat
1f63b	smiling cat with heart-eyes
1f63c	cat with wry smile
1f63d	kissing cat
1f63e	pouting cat
1f63f	crying cat
1f640	weary cat
1f641	slightly frowning face
1f642	slightly smiling face
1f643	upside-down face
1f644	face with rolling eyes
1f645	person gesturing NO
1f646	person gesturing OK
1f647	person bowing
1f648	see-no-evil monkey
1f649	hear-no-evil monkey
1f64a	speak-no-evil monkey
1f64b	person raising hand
1f64c	raising hands
1f64d	person frowning
1f64e	person pouting
1f64f	folded hands
1f680	rocket
1f681	helicopter
1f682	locomotive
1f683	railway car
1f684	high-speed train
1f685	bullet train
1f686	train
1f687	metro
1f688	light rail
1f689	station
1f68a	tram
1f68b	tram car
1f68c	bus
1f68d	oncoming bus
1f68e	trolleybus
1f68f	bus stop
1f690	minibus
1f691	ambulance
1f692	fire engine
1f693	police car
1f694	oncoming police car
1f695	taxi
1f696	oncoming taxi
1f697	automobile
1f698	oncoming automobile
1f699	sport utility vehicle
1f69a	delivery truck
1f69b	articulated lorry
1f69c	tractor
1f69d	monorail
1f69e	mountain railway
1f69f	suspension railway
1f6a0	mountain cableway
1f6a1	aerial tramway
1f6a2	ship
1f6a3	person rowing boat
1f6a4	speedboat
1f6a5	horizontal traffic light
1f6a6	vertical traffic light
1f6a7	construction
1f6a8	police car light
1f6a9	triangular flag
1f6aa	door
1f6ab	prohibited
1f6ac	cigarette
1f6ad	no smoking
1f6ae	litter in bin sign
1f6af	no littering
1f6b0	potable water
1f6b1	non-potable water
1f6b2	bicycle
1f6b3	no bicycles
1f6b4	person biking
1f6b5	person mountain biking
1f6b6	person walking
1f6b7	no pedestrians
1f6b8	children crossing
1f6b9	men’s room
1f6ba	women’s room
1f6bb	restroom
1f6bc	baby symbol
1f6bd	toilet
1f6be	water closet
1f6bf	shower
1f6c0	person taking bath
1f6c1	bathtub
1f6c2	passport control
1f6c3	customs
1f6c4	baggage claim
1f6c5	left luggage
1f6cb	couch and lamp
1f6cc	person in bed
1f6cd	shopping bags
1f6ce	bellhop bell
1f6cf	bed
1f6d0	place of worship
1f6d1	stop sign
1f6d2	shopping cart
1f6d5	hindu temple
1f6d6	hut
1f6d7	elevator
1f6dd	playground slide
1f6de	wheel
1f6df	ring buoy
1f6e0	hammer and wrench
1f6e1	shield
1f6e2	oil drum
1f6e3	motorway
1f6e4	railway track
1f6e5	motor boat
1f6e9	small airplane
1f6eb	airplane departure
1f6ec	airplane arrival
1f6f0	satellite
1f6f3	passenger ship
1f6f4	kick scooter
1f6f5	motor scooter
1f6f6	canoe
1f6f7	sled
1f6f8	flying saucer
1f6f9	skateboard
1f6fa	auto rickshaw
1f6fb	pickup truck
1f6fc	roller skate
1f7e0	orange circle
1f7e1	yellow circle
1f7e2	green circle
1f7e3	purple circle
1f7e4	brown circle
1f7e5	red square
1f7e6	blue square
1f7e7	orange square
1f7e8	yellow square
1f7e9	green square
1f7ea	purple square
1f7eb	brown square
1f7f0	heavy equals sign
1f90c	pinched fingers
1f90d	white heart
1f90e	brown heart
1f90f	pinching hand
1f910	zipper-mouth face
1f911	money-mouth face
1f912	face with thermometer
1f913	nerd face
1f914	thinking face
1f915	face with head-bandage
1f916	robot
1f917	smiling face with open hands
1f918	sign of the horns
1f919	call me hand
1f91a	raised back of hand
1f91b	left-facing fist
1f91c	right-facing fist
1f91d	handshake
1f91e	crossed fingers
1f91f	love-you gesture
1f920	cowboy hat face
1f921	clown face
1f922	nauseated face
1f923	rolling on the floor laughing
1f924	drooling face
1f925	lying face
1f926	person facepalming
1f927	sneezing face
1f928	face with raised eyebrow
1f929	star-struck
1f92a	zany face
1f92b	shushing face
1f92c	face with symbols on mouth
1f92d	face with hand over mouth
1f92e	face vomiting
1f92f	exploding head
1f930	pregnant woman
1f931	breast-feeding
1f932	palms up together
1f933	selfie
1f934	prince
1f935	person in tuxedo
1f936	Mrs. Claus
1f937	person shrugging
1f938	person cartwheeling
1f939	person juggling
1f93a	person fencing
1f93c	people wrestling
1f93d	person playing water polo
1f93e	person playing handball
1f93f	diving mask
1f940	wilted flower
1f941	drum
1f942	clinking glasses
1f943	tumbler glass
1f944	spoon
1f945	goal net
1f947	1st place medal
1f948	2nd place medal
1f949	3rd place medal
1f94a	boxing glove
1f94b	martial arts uniform
1f94c	curling stone
1f94d	lacrosse
1f94e	softball
1f94f	flying disc
1f950	croissant
1f951	avocado
1f952	cucumber
1f953	bacon
1f954	potato
1f955	carrot
1f956	baguette bread
1f957	green salad
1f958	shallow pan of food
1f959	stuffed flatbread
1f95a	egg
1f95b	glass of milk
1f95c	peanuts
1f95d	kiwi fruit
1f95e	pancakes
1f95f	dumpling
1f960	fortune cookie
1f961	takeout box
1f962	chopsticks
1f963	bowl with spoon
1f964	cup with straw
1f965	coconut
1f966	broccoli
1f967	pie
1f968	pretzel
1f969	cut of meat
1f96a	sandwich
1f96b	canned food
1f96c	leafy green
1f96d	mango
1f96e	moon cake
1f96f	bagel
1f970	smiling face with hearts
1f971	yawning face
1f972	smiling face with tear
1f973	partying face
1f974	woozy face
1f975	hot face
1f976	cold face
1f977	ninja
1f978	disguised face
1f979	face holding back tears
1f97a	pleading face
1f97b	sari
1f97c	lab coat
1f97d	goggles
1f97e	hiking boot
1f97f	flat shoe
1f980	crab
1f981	lion
1f982	scorpion
1f983	turkey
1f984	unicorn
1f985	eagle
1f986	duck
1f987	bat
1f988	shark
1f989	owl
1f98a	fox
1f98b	butterfly
1f98c	deer
1f98d	gorilla
1f98e	lizard
1f98f	rhinoceros
1f990	shrimp
1f991	squid
1f992	giraffe
1f993	zebra
1f994	hedgehog
1f995	sauropod
1f996	T-Rex
1f997	cricket
1f998	kangaroo
1f999	llama
1f99a	peacock
1f99b	hippopotamus
1f99c	parrot
1f99d	raccoon
1f99e	lobster
1f99f	mosquito
1f9a0	microbe
1f9a1	badger
1f9a2	swan
1f9a3	mammoth
1f9a4	dodo
1f9a5	sloth
1f9a6	otter
1f9a7	orangutan
1f9a8	skunk
1f9a9	flamingo
1f9aa	oyster
1f9ab	beaver
1f9ac	bison
1f9ad	seal
1f9ae	guide dog
1f9af	white cane
1f9b0	red hair
1f9b1	curly hair
1f9b2	bald
1f9b3	white hair
1f9b4	bone
1f9b5	leg
1f9b6	foot
1f9b7	tooth
1f9b8	superhero
1f9b9	supervillain
1f9ba	safety vest
1f9bb	ear with hearing aid
1f9bc	motorized wheelchair
1f9bd	manual wheelchair
1f9be	mechanical arm
1f9bf	mechanical leg
1f9c0	cheese wedge
1f9c1	cupcake
1f9c2	salt
1f9c3	beverage box
1f9c4	garlic
1f9c5	onion
1f9c6	falafel
1f9c7	waffle
1f9c8	butter
1f9c9	mate
1f9ca	ice
1f9cb	bubble tea
1f9cc	troll
1f9cd	person standing
1f9ce	person kneeling
1f9cf	deaf person
1f9d0	face with monocle
1f9d1	person
1f9d2	child
1f9d3	older person
1f9d4	person: beard
1f9d5	woman with headscarf
1f9d6	person in steamy room
1f9d7	person climbing
1f9d8	person in lotus position
1f9d9	mage
1f9da	fairy
1f9db	vampire
1f9dc	merperson
1f9dd	elf
1f9de	genie
1f9df	zombie
1f9e0	brain
1f9e1	orange heart
1f9e2	billed cap
1f9e3	scarf
1f9e4	gloves
1f9e5	coat
1f9e6	socks
1f9e7	red envelope
1f9e8	firecracker
1f9e9	puzzle piece
1f9ea	test tube
1f9eb	petri dish
1f9ec	dna
1f9ed	compass
1f9ee	abacus
1f9ef	fire extinguisher
1f9f0	toolbox
1f9f1	brick
1f9f2	magnet
1f9f3	luggage
1f9f4	lotion bottle
1f9f5	thread
1f9f6	yarn
1f9f7	safety pin
1f9f8	teddy bear
1f9f9	broom
1f9fa	basket
1f9fb	roll of paper
1f9fc	soap
1f9fd	sponge
1f9fe	receipt
1f9ff	nazar amulet
1fa70	ballet shoes
1fa71	one-piece swimsuit
1fa72	briefs
1fa73	shorts
1fa74	thong sandal
1fa78	drop of blood
1fa79	adhesive bandage
1fa7a	stethoscope
1fa7b	x-ray
1fa7c	crutch
1fa80	yo-yo
1fa81	kite
1fa82	parachute
1fa83	boomerang
1fa84	magic wand
1fa85	piñata
1fa86	nesting dolls
1fa90	ringed planet
1fa91	chair
1fa92	razor
1fa93	axe
1fa94	diya lamp
1fa95	banjo
1fa96	military helmet
1fa97	accordion
1fa98	long drum
1fa99	coin
1fa9a	carpentry saw
1fa9b	screwdriver
1fa9c	ladder
1fa9d	hook
1fa9e	mirror
1fa9f	window
1faa0	plunger
1faa1	sewing needle
1faa2	knot
1faa3	bucket
1faa4	mouse trap
1faa5	toothbrush
1faa6	headstone
1faa7	placard
1faa8	rock
1faa9	mirror ball
1faaa	identification card
1faab	low battery
1faac	hamsa
1fab0	fly
1fab1	worm
1fab2	beetle
1fab3	cockroach
1fab4	potted plant
1fab5	wood
1fab6	feather
1fab7	lotus
1fab8	coral
1fab9	empty nest
1faba	nest with eggs
1fac0	anatomical heart
1fac1	lungs
1fac2	people hugging
1fac3	pregnant man
1fac4	pregnant person
1fac5	person with crown
1fad0	blueberries
1fad1	bell pepper
1fad2	olive
1fad3	flatbread
1fad4	tamale
1fad5	fondue
1fad6	teapot
1fad7	pouring liquid
1fad8	beans
1fad9	jar
1fae0	melting face
1fae1	saluting face
1fae2	face with open eyes and hand over mouth
1fae3	face with peeking eye
1fae4	face with diagonal mouth
1fae5	dotted line face
1fae6	biting lip
1fae7	bubbles
1faf0	hand with index finger and thumb crossed
1faf1	rightwards hand
1faf2	leftwards hand
1faf3	palm down hand
1faf4	palm up hand
1faf5	index pointing at the viewer
1faf6	heart hands
203c	double exclamation mark
2049	exclamation question mark
2122	trade mark
2139	information
2194	left-right arrow
2195	up-down arrow
2196	up-left arrow
2197	up-right arrow
2198	down-right arrow
2199	down-left arrow
21a9	right arrow curving left
21aa	left arrow curving right
231a	watch
231b	hourglass done
2328	keyboard
23cf	eject button
23e9	fast-forward button
23ea	fast reverse button
23eb	fast up button
23ec	fast down button
23ed	next track button
23ee	last track button
23ef	play or pause button
23f0	alarm clock
23f1	stopwatch
23f2	timer clock
23f3	hourglass not done
23f8	pause button
23f9	stop button
23fa	record button
24c2	circled M
25aa	black small square
25ab	white small square
25b6	play button
25c0	reverse button
25fb	white medium square
25fc	black medium square
25fd	white medium-small square
25fe	black medium-small square
2600	sun
2601	cloud
2602	umbrella
2603	snowman
2604	comet
260e	telephone
2611	check box with check
2614	umbrella with rain drops
2615	hot beverage
2618	shamrock
261d	index pointing up
2620	skull and crossbones
2622	radioactive
2623	biohazard
2626	orthodox cross
262a	star and crescent
262e	peace symbol
262f	yin yang
2638	wheel of dharma
2639	frowning face
263a	smiling face
2640	female sign
2642	male sign
2648	Aries
2649	Taurus
264a	Gemini
264b	Cancer
264c	Leo
264d	Virgo
264e	Libra
264f	Scorpio
2650	Sagittarius
2651	Capricorn
2652	Aquarius
2653	Pisces
265f	chess pawn
2660	spade suit
2663	club suit
2665	heart suit
2666	diamond suit
2668	hot springs
267b	recycling symbol
267e	infinity
267f	wheelchair symbol
2692	hammer and pick
2693	anchor
2694	crossed swords
2695	medical symbol
2696	balance scale
2697	alembic
2699	gear
269b	atom symbol
269c	fleur-de-lis
26a0	warning
26a1	high voltage
26a7	transgender symbol
26aa	white circle
26ab	black circle
26b0	coffin
26b1	funeral urn
26bd	soccer ball
26be	baseball
26c4	snowman without snow
26c5	sun behind cloud
26c8	cloud with lightning and rain
26ce	Ophiuchus
26cf	pick
26d1	rescue worker’s helmet
26d3	chains
26d4	no entry
26e9	shinto shrine
26ea	church
26f0	mountain
26f1	umbrella on ground
26f2	fountain
26f3	flag in hole
26f4	ferry
26f5	sailboat
26f7	skier
26f8	ice skate
26f9	person bouncing ball
26fa	tent
26fd	fuel pump
2702	scissors
2705	check mark button
2708	airplane
2709	envelope
270a	raised fist
270b	raised hand
270c	victory hand
270d	writing hand
270f	pencil
2712	black nib
2714	check mark
2716	multiply
271d	latin cross
2721	star of David
2728	sparkles
2733	eight-spoked asterisk
2734	eight-pointed star
2744	snowflake
2747	sparkle
274c	cross mark
274e	cross mark button
2753	red question mark
2754	white question mark
2755	white exclamation mark
2757	red exclamation mark
2763	heart exclamation
2764	red heart
2795	plus
2796	minus
2797	divide
27a1	right arrow
27b0	curly loop
27bf	double curly loop
2934	right arrow curving up
2935	right arrow curving down
2b05	left arrow
2b06	up arrow
2b07	down arrow
2b1b	black large square
2b1c	white large square
2b50	star
2b55	hollow red circle
3030	wavy dash
303d	part alternation mark
3297	Japanese “congratulations” button
3299	Japanese “secret” button
a9	copyright
ae	registered`;
